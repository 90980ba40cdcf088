// Payload logging (docs/metrics.md#payload-logging): what the models saw and answered, for drift and quality
// monitoring, as CloudEvents in KServe's inference logger format (types org.kubeflow.serving.inference.request
// and .response, one shared id, the extensions inferenceservicename, namespace, component, endpoint), sent to an
// HTTP sink in binary content mode: the attributes in ce-* headers, the v2 JSON body as the event's data.
//
// An observer on the request-observer seam (core/request_observer.h). On the scheduler's worker thread, a
// sampled request's inputs and, when it succeeded, its outputs are encoded to JSON and queued; one sender
// thread posts the events, one at a time. The request path never waits: a full queue, a body over the limit or
// a sink that fails or is slow drops events, counted in inference_payload_events_total{outcome} and logged (at
// most once a second per outcome, with the count since). Events carry tensors and ids only: never a header, token or
// certificate.
//
// Per model, config.pbtxt parameters override the flags: `payload_log_mode` (all, request, response, or none:
// that model is not logged) and `payload_log_sample_rate` (0..1). The sink stays the server's.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "core/infer_request.h"
#include "core/mutex.h"
#include "core/request_observer.h"
#include "observability/http_post.h"
#include "observability/logger.h"

namespace serving {

struct PayloadLogOptions {
  std::string url;                          // the sink, http:// or https://; empty: payload logging off
  std::string mode = "all";                 // all | request | response
  double sample_rate = 1.0;                 // fraction of requests whose events are sent, 0..1
  size_t max_bytes = size_t{1} << 20;       // an event whose body is larger is dropped
  size_t queue = 256;                       // events waiting for the sender; past it new ones are dropped
  std::string source = "inference-server";  // ce-source
  std::string namespace_name;               // ce-namespace (the pod's namespace, from the downward API)
  std::string endpoint;                     // ce-endpoint (e.g. the track: stable, canary)
  std::chrono::milliseconds timeout{2000};  // per POST, connecting included
};

// The JSON bodies of the events: a request as its inputs (KServe v2 REST's request form), a response as v2
// REST's response. Given by the caller, so that this observer does not depend on a frontend.
struct PayloadEncoders {
  std::function<std::string(const InferRequest&)> request;
  std::function<std::string(const InferResponse&)> response;
};

class PayloadLog final : public RequestObserver {
 public:
  // With `options.url` empty payload logging is off: nothing is registered or started, and the models'
  // payload_log_* parameters are checked and ignored (with a warning that says so). Else its families are
  // registered in `registry` and the sender starts.
  PayloadLog(PayloadLogOptions options, PayloadEncoders encoders, prometheus::Registry& registry);
  // Sends what is queued for at most a second, drops the rest (outcome "shutdown") and joins the sender.
  ~PayloadLog() override;
  PayloadLog(const PayloadLog&) = delete;
  PayloadLog& operator=(const PayloadLog&) = delete;

  std::shared_ptr<VersionObserver> ForVersion(const ModelSettings& model, int64_t version) override;
  StatusOr<ParameterUse> CheckParameter(const std::string& key, const std::string& value) const override;

 private:
  class Version;
  enum Outcome : size_t { kSent, kQueueFull, kTooLarge, kSinkError, kShutdown, kOutcomes };
  struct Event {
    bool response = false;
    std::string id;
    std::string model;
    std::string version;
    std::string trace_id;
    std::string body;
  };

  // Called by a version's observer on a worker thread, with its model's mode and sample rate.
  void Payload(const std::string& model, const std::string& version, std::string_view mode, double sample_rate,
               const InferRequest& request, const InferResponse* response);
  bool Full() const EXCLUDES(mu_);
  void Offer(Event event) EXCLUDES(mu_);
  void Count(bool response, Outcome outcome, const std::string& detail);
  void Run() EXCLUDES(mu_);
  // POSTs one event; "" when the sink took it (2xx), else why not.
  std::string Send(const Event& event);

  const PayloadLogOptions options_;
  const PayloadEncoders encoders_;
  prometheus::Counter* counts_[2][kOutcomes];  // [request, response][outcome]
  logging::RateLimitedWarning warnings_[kOutcomes]{
      logging::RateLimitedWarning("payload event sent"),  // never logged
      logging::RateLimitedWarning("payload events dropped: the queue is full (the sink is slower than requests)"),
      logging::RateLimitedWarning("payload events dropped: the body is over --payload-log-max-bytes"),
      logging::RateLimitedWarning("payload events dropped: the sink did not take them"),
      logging::RateLimitedWarning("payload events dropped: the server stopped before they were sent")};
  mutable Mutex mu_;
  CondVar cv_;
  std::deque<Event> queue_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  HttpPoster poster_;   // the sender thread's
  std::thread sender_;  // declared last: starts once the rest is built
};

}  // namespace serving
