#include "observability/payload_log.h"

#include <cstdlib>
#include <optional>

#include "core/backend.h"

#include "observability/logger.h"
#include "observability/sampling.h"

namespace serving {
namespace {

constexpr std::string_view kTypes[2] = {"org.kubeflow.serving.inference.request",
                                        "org.kubeflow.serving.inference.response"};
constexpr std::string_view kOutcomeNames[] = {"sent", "queue_full", "too_large", "sink_error", "shutdown"};
// Client-chosen ids go into headers: longer ones are cut (the body keeps them whole).
constexpr size_t kMaxHeaderValue = 256;

// A CloudEvents header value in the HTTP binding's form: bytes outside printable ASCII, space, '"' and '%'
// percent-encoded, so that no value (a request id is the client's) can end the header or start another.
std::string HeaderValue(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value.substr(0, kMaxHeaderValue)) {
    if (c < 0x21 || c > 0x7e || c == '"' || c == '%') {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// At least how many bytes a JSON array of the tensor's elements takes ("0," each): a request whose tensors
// could not fit under the limit is dropped before it is encoded.
size_t JsonLowerBound(const std::vector<Tensor>& tensors) {
  size_t bytes = 0;
  for (const auto& t : tensors) {
    size_t elements = 1;
    for (int64_t d : t.shape) elements *= d > 0 ? static_cast<size_t>(d) : 0;
    bytes += 2 * elements;
  }
  return bytes;
}

}  // namespace

class PayloadLog::Version final : public VersionObserver {
 public:
  Version(PayloadLog* log, std::string model, int64_t version, std::string mode, double sample_rate)
      : log_(log),
        model_(std::move(model)),
        version_(std::to_string(version)),
        mode_(std::move(mode)),
        sample_rate_(sample_rate) {}
  bool wants_payload() const override { return true; }
  void Payload(const InferRequest& request, const InferResponse* response) override {
    log_->Payload(model_, version_, mode_, sample_rate_, request, response);
  }

 private:
  PayloadLog* const log_;
  const std::string model_;
  const std::string version_;
  const std::string mode_;
  const double sample_rate_;
};

namespace {

constexpr const char* kModeParameter = "payload_log_mode";
constexpr const char* kRateParameter = "payload_log_sample_rate";

// A sample rate as a config parameter's string: 0..1, or nullopt.
std::optional<double> ParseRate(const std::string& value) {
  char* end = nullptr;
  const double rate = std::strtod(value.c_str(), &end);
  if (value.empty() || end != value.c_str() + value.size() || !(rate >= 0 && rate <= 1)) return std::nullopt;
  return rate;
}

}  // namespace

StatusOr<ParameterUse> PayloadLog::CheckParameter(const std::string& key, const std::string& value) const {
  if (key == kModeParameter) {
    if (value != "all" && value != "request" && value != "response" && value != "none")
      return InvalidArgument("parameters['payload_log_mode'] must be all, request, response or none, not '" + value +
                             "'");
  } else if (key == kRateParameter) {
    if (!ParseRate(value))
      return InvalidArgument("parameters['payload_log_sample_rate'] must be a number within 0..1, not '" + value + "'");
  } else {
    return ParameterUse{};
  }
  if (options_.url.empty())
    return ParameterUse{ParameterUse::kIgnored, "payload logging is off (no --payload-log-url)"};
  return ParameterUse{ParameterUse::kRead, ""};
}

PayloadLog::PayloadLog(PayloadLogOptions options, PayloadEncoders encoders, prometheus::Registry& registry)
    : options_(std::move(options)), encoders_(std::move(encoders)) {
  if (options_.url.empty()) return;  // off
  auto& family = prometheus::BuildCounter()
                     .Name("inference_payload_events_total")
                     .Help(
                         "Payload log events (CloudEvents to --payload-log-url) by type and outcome: sent, or "
                         "dropped because the queue was full, the body was over --payload-log-max-bytes, the "
                         "sink failed, or the server stopped")
                     .Register(registry);
  for (size_t type = 0; type < 2; ++type)
    for (size_t o = 0; o < kOutcomes; ++o)
      counts_[type][o] =
          &family.Add({{"type", type ? "response" : "request"}, {"outcome", std::string(kOutcomeNames[o])}});
  sender_ = std::thread([this] { Run(); });
  logging::Info("payload logging", {{"sink", RedactedUrl(options_.url)},
                                    {"mode", options_.mode},
                                    {"sample_rate", options_.sample_rate},
                                    {"max_bytes", static_cast<int64_t>(options_.max_bytes)},
                                    {"queue", static_cast<int64_t>(options_.queue)}});
}

PayloadLog::~PayloadLog() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  poster_.GiveUpAfter(std::chrono::seconds(1));  // a POST in flight to a stalled peer: abandoned then
  cv_.NotifyOne();
  if (sender_.joinable()) sender_.join();
}

std::shared_ptr<VersionObserver> PayloadLog::ForVersion(const ModelSettings& model, int64_t version) {
  if (options_.url.empty()) return nullptr;
  // The model's own settings (checked when its config was read), else the flags'.
  std::string mode = ConfigParameter(model, kModeParameter);
  if (mode.empty()) mode = options_.mode;
  if (mode == "none") return nullptr;  // not logged: its requests cost nothing here
  const std::optional<double> rate = ParseRate(ConfigParameter(model, kRateParameter));
  return std::make_shared<Version>(this, model.name, version, std::move(mode), rate.value_or(options_.sample_rate));
}

void PayloadLog::Payload(const std::string& model, const std::string& version, std::string_view mode,
                         double sample_rate, const InferRequest& request, const InferResponse* response) {
  const bool requests = mode != "response";
  const bool responses = mode != "request" && response != nullptr;
  if ((!requests && !responses) || !Sampled(sample_rate)) return;
  if (Full()) {
    if (requests) Count(false, kQueueFull, "");
    if (responses) Count(true, kQueueFull, "");
    return;
  }
  auto offer = [&](bool is_response, size_t lower_bound, const auto& encode) {
    if (lower_bound > options_.max_bytes) return Count(is_response, kTooLarge, "over " + std::to_string(lower_bound));
    std::string body = encode();
    if (body.size() > options_.max_bytes) return Count(is_response, kTooLarge, std::to_string(body.size()));
    Offer({is_response, request.id, model, version, request.trace.trace_id, std::move(body)});
  };
  if (requests) offer(false, JsonLowerBound(request.inputs), [&] { return encoders_.request(request); });
  if (responses) offer(true, JsonLowerBound(response->outputs), [&] { return encoders_.response(*response); });
}

bool PayloadLog::Full() const {
  MutexLock lock(mu_);
  return stopping_ || queue_.size() >= options_.queue;
}

void PayloadLog::Offer(Event event) {
  {
    MutexLock lock(mu_);
    if (!stopping_ && queue_.size() < options_.queue) {
      queue_.push_back(std::move(event));
      lock.Unlock();
      cv_.NotifyOne();
      return;
    }
  }
  Count(event.response, kQueueFull, "");
}

void PayloadLog::Count(bool response, Outcome outcome, const std::string& detail) {
  counts_[response][outcome]->Increment();
  if (outcome != kSent) warnings_[outcome].Hit(detail);
}

void PayloadLog::Run() {
  MutexLock lock(mu_);
  Clock::time_point deadline = Clock::time_point::max();
  while (true) {
    cv_.Wait(mu_, [this]() REQUIRES(mu_) { return stopping_ || !queue_.empty(); });
    if (stopping_ && deadline == Clock::time_point::max()) deadline = Clock::now() + std::chrono::seconds(1);
    if (queue_.empty()) return;  // stopping, nothing left
    if (Clock::now() > deadline) {
      std::deque<Event> dropped;
      dropped.swap(queue_);
      lock.Unlock();
      for (const auto& e : dropped) Count(e.response, kShutdown, "");
      return;
    }
    Event event = std::move(queue_.front());
    queue_.pop_front();
    lock.Unlock();
    const std::string error = Send(event);
    Count(event.response, error.empty() ? kSent : kSinkError, error);
    lock.Lock();
  }
}

std::string PayloadLog::Send(const Event& e) {
  const std::vector<std::string> headers = {
      "Content-Type: application/json",
      "ce-specversion: 1.0",
      "ce-id: " + HeaderValue(e.id),
      "ce-type: " + std::string(kTypes[e.response]),
      "ce-source: " + HeaderValue(options_.source),
      "ce-time: " + logging::Timestamp(),
      "ce-inferenceservicename: " + HeaderValue(e.model),
      "ce-namespace: " + HeaderValue(options_.namespace_name),
      "ce-component: predictor",
      "ce-endpoint: " + HeaderValue(options_.endpoint),
      "ce-modelversion: " + HeaderValue(e.version),
      "ce-traceid: " + HeaderValue(e.trace_id),
  };
  return poster_.Post(options_.url, headers, e.body, options_.timeout);
}

}  // namespace serving
