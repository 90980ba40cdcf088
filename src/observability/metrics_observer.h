// MetricsObserver: the request observer (core/request_observer.h) behind the Prometheus metrics of requests
// (inference_* in docs/metrics.md) and Triton's statistics (the statistics extension and the nv_inference_*
// metrics computed from them). Each model version's observer holds that version's series (Metrics::ModelSeries,
// shared by overlapping copies of one version) and adds to them on the request path without a lock or a look-up.
#pragma once

#include <memory>
#include <string>

#include "core/request_observer.h"
#include "observability/metrics.h"

namespace serving {

class MetricsObserver final : public RequestObserver {
 public:
  // `metrics` must outlive this observer and every version observer it made.
  explicit MetricsObserver(Metrics& metrics) : metrics_(metrics) {}

  std::shared_ptr<VersionObserver> ForVersion(const ModelSettings& model, int64_t version) override;
  void Received(const InferRequest&) override;
  void Finished(const RequestOutcome& outcome, VersionObserver* own) override;
  void ControlStarted(std::string_view action, const std::string& model) override;
  void ControlFinished(std::string_view action, const std::string& model, const Status& status) override;

 private:
  Metrics& metrics_;
};

}  // namespace serving
