// Tracing (docs/metrics.md#tracing): OpenTelemetry spans of each sampled request, exported over OTLP/HTTP
// (JSON encoding) to a collector. An observer on the request-observer seam (core/request_observer.h):
//
//  - the server span of a request ("infer <model>", kind SERVER), child of the caller's span when a W3C
//    `traceparent` came (its trace id kept), from when the transport received it until its reply was handed
//    back: protocol, model, version, request id, status, input and output bytes;
//  - its queue span ("queue", child of the server span): the wait in the model's scheduler until its batch
//    started;
//  - the execution span of each batch ("execute <model>"): one per model execution, child of the first sampled
//    request's server span and linked to the server span of every sampled request in the batch (a batch serves
//    many traces), with the batch's size and the moments its inputs were stacked and the model returned.
//
// Sampling is parent-based: a request whose caller sent a sampled `traceparent` is traced, one whose caller
// sent an unsampled one is not, and the others by `sample_rate` of their trace id (as OpenTelemetry's
// TraceIdRatioBased sampler: the same decision for a trace id wherever it is made).
//
// The request path never waits for the collector: spans go into a bounded queue; one sender thread exports them
// in batches (at most `batch` spans, at the latest `delay` after the first waits). A full queue or a collector
// that fails drops spans, counted in inference_trace_spans_dropped_total{reason} and logged at most once a second.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "core/infer_request.h"
#include "core/mutex.h"
#include "core/request_observer.h"
#include "observability/http_post.h"
#include "observability/logger.h"

namespace serving {

struct TracingOptions {
  std::string url;                           // the collector's OTLP/HTTP traces endpoint (http(s)://…/v1/traces)
  double sample_rate = 1.0;                  // for requests that came without a parent, 0..1
  size_t queue = 2048;                       // spans waiting for the sender; past it new ones are dropped
  size_t batch = 512;                        // spans per export at most
  std::chrono::milliseconds delay{5000};     // a span waits at most this long before its batch is exported
  std::chrono::milliseconds timeout{10000};  // per export
  // Resource attributes (service.name, service.version, k8s.pod.name, ...), in order.
  std::vector<std::pair<std::string, std::string>> resource;
};

// One finished span, as exported.
struct Span {
  using Value = std::variant<std::string, int64_t, bool>;
  std::string trace_id;  // 32 lowercase hex
  std::string span_id;   // 16 lowercase hex
  std::string parent_span_id;
  std::string tracestate;
  std::string name;
  bool server = false;  // kind SERVER, else INTERNAL
  int64_t start_unix_ns = 0;
  int64_t end_unix_ns = 0;
  std::vector<std::pair<std::string, Value>> attributes;
  std::vector<std::pair<std::string, int64_t>> events;     // name, unix ns
  std::vector<std::pair<std::string, std::string>> links;  // trace id, span id
  std::string error;                                       // non-empty: status ERROR with this message
};

// The OTLP/HTTP JSON body (ExportTraceServiceRequest) of `spans`, under one resource.
std::string EncodeOtlpJson(const std::vector<Span>& spans,
                           const std::vector<std::pair<std::string, std::string>>& resource);

// Whether a request with this trace context is traced: its parent's flag, else `rate` of trace ids.
bool TraceSampled(const TraceContext& trace, double rate);

class Tracing final : public RequestObserver {
 public:
  // `options.url` must not be empty. Its families are registered in `registry`.
  Tracing(TracingOptions options, prometheus::Registry& registry);
  // Exports what is queued for at most a second, drops the rest (reason "shutdown") and joins the sender.
  ~Tracing() override;
  Tracing(const Tracing&) = delete;
  Tracing& operator=(const Tracing&) = delete;

  std::shared_ptr<VersionObserver> ForVersion(const ModelSettings& model, int64_t version) override;
  void Finished(const RequestOutcome& outcome, VersionObserver* own) override;

 private:
  class Version;
  enum Drop : size_t { kQueueFull, kExportFailed, kShutdown, kDrops };

  bool Sampled(const TraceContext& trace) const { return TraceSampled(trace, options_.sample_rate); }
  // Queues a span for the sender (any thread).
  void Offer(Span span) EXCLUDES(mu_);
  void Dropped(Drop reason, size_t count, const std::string& detail);
  void Run() EXCLUDES(mu_);

  const TracingOptions options_;
  prometheus::Counter* exported_;
  prometheus::Counter* dropped_[kDrops];
  logging::RateLimitedWarning warnings_[kDrops]{
      logging::RateLimitedWarning("trace spans dropped: the queue is full (the collector is slower than requests)"),
      logging::RateLimitedWarning("trace spans dropped: the collector did not take them"),
      logging::RateLimitedWarning("trace spans dropped: the server stopped before they were exported")};
  Mutex mu_;
  CondVar cv_;
  std::deque<Span> queue_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  HttpPoster poster_;   // the sender thread's
  std::thread sender_;  // declared last: starts once the rest is built
};

}  // namespace serving
