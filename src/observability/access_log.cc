#include "observability/access_log.h"

#include "observability/logger.h"
#include "observability/sampling.h"

namespace serving {

void AccessLog::Finished(const RequestOutcome& outcome, VersionObserver*) {
  const Status& status = outcome.status;
  if (status.ok() && !Sampled(sample_rate_)) return;
  const InferRequest& request = outcome.request;
  const auto latency = std::chrono::duration_cast<std::chrono::microseconds>(outcome.finished - request.received);
  logging::Log(status.ok() ? logging::Level::kInfo : logging::Level::kWarn, "request",
               {{"request_id", request.id},
                {"model", std::string(outcome.model)},
                {"version", outcome.model.empty() ? std::string() : std::to_string(outcome.version)},
                {"protocol", request.protocol},
                {"status", StatusCodeName(status.code())},
                {"latency_us", static_cast<int64_t>(latency.count())},
                {"trace_id", request.trace.trace_id},
                {"span_id", request.trace.span_id},
                {"principal", request.principal},
                {"tls_identity", request.tls_identity},
                {"error", status.message()}});
}

void AccessLog::ControlFinished(std::string_view action, const std::string& model, const Status& status) {
  logging::Log(status.ok() ? logging::Level::kInfo : logging::Level::kWarn, "model control",
               {{"action", std::string(action)},
                {"model", model},
                {"status", StatusCodeName(status.code())},
                {"error", status.message()}});
}

}  // namespace serving
