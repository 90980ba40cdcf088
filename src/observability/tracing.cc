#include "observability/tracing.h"

#include <algorithm>
#include <charconv>

#include "core/inference_server.h"

namespace serving {
namespace {

constexpr std::string_view kDropNames[] = {"queue_full", "export_failed", "shutdown"};

// A steady-clock moment as Unix nanoseconds (the clocks read together, so each span is placed where it was).
int64_t UnixNs(Clock::time_point t) {
  const auto now_system = std::chrono::system_clock::now();
  const auto now_steady = Clock::now();
  return std::chrono::duration_cast<std::chrono::nanoseconds>(now_system.time_since_epoch() - (now_steady - t)).count();
}

// The OTLP JSON body is written directly, not through nlohmann::json: building its document per span cost the
// sender thread more than the requests it traced (perf: malloc/free of the DOM, then its serializer, were most of
// the server's CPU with every request traced; docs/benchmarks.md#tracing-and-payload-logging). The writer is
// checked against nlohmann's parser in tracing_test.cc and by the trace_context fuzz target.

// A JSON string: valid UTF-8 (what is not becomes U+FFFD, as client input does elsewhere), escaped.
void AppendString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  const bool ascii = std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  const std::string valid = ascii ? std::string() : ValidUtf8(s);
  if (!ascii) s = valid;
  out += '"';
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
}

void AppendKey(std::string& out, std::string_view key) {
  AppendString(out, key);
  out += ':';
}

void AppendAttributeValue(std::string& out, const std::string& v) {
  out += R"({"stringValue":)";
  AppendString(out, v);
  out += '}';
}

void AppendAttributeValue(std::string& out, const Span::Value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) {
    out += R"({"stringValue":)";
    AppendString(out, *s);
  } else if (const auto* i = std::get_if<int64_t>(&v)) {
    out += R"({"intValue":")" + std::to_string(*i) + '"';  // int64 as a string, as OTLP JSON says
  } else {
    out += std::get<bool>(v) ? R"({"boolValue":true)" : R"({"boolValue":false)";
  }
  out += '}';
}

template <typename Pairs>
void AppendAttributes(std::string& out, const Pairs& pairs) {
  out += '[';
  bool first = true;
  for (const auto& [key, value] : pairs) {
    if (!first) out += ',';
    first = false;
    out += R"({"key":)";
    AppendString(out, key);
    out += R"(,"value":)";
    AppendAttributeValue(out, value);
    out += '}';
  }
  out += ']';
}

void AppendSpan(std::string& out, const Span& s) {
  out += '{';
  AppendKey(out, "traceId");
  AppendString(out, s.trace_id);
  out += R"(,"spanId":)";
  AppendString(out, s.span_id);
  if (!s.parent_span_id.empty()) {
    out += R"(,"parentSpanId":)";
    AppendString(out, s.parent_span_id);
  }
  if (!s.tracestate.empty()) {
    out += R"(,"traceState":)";
    AppendString(out, s.tracestate);
  }
  out += R"(,"name":)";
  AppendString(out, s.name);
  out += s.server ? R"(,"kind":2)" : R"(,"kind":1)";  // SPAN_KIND_SERVER, SPAN_KIND_INTERNAL
  out += R"(,"startTimeUnixNano":")" + std::to_string(s.start_unix_ns) + '"';
  out += R"(,"endTimeUnixNano":")" + std::to_string(s.end_unix_ns) + '"';
  out += R"(,"attributes":)";
  AppendAttributes(out, s.attributes);
  if (!s.events.empty()) {
    out += R"(,"events":[)";
    for (size_t i = 0; i < s.events.size(); ++i) {
      if (i) out += ',';
      out += R"({"name":)";
      AppendString(out, s.events[i].first);
      out += R"(,"timeUnixNano":")" + std::to_string(s.events[i].second) + R"("})";
    }
    out += ']';
  }
  if (!s.links.empty()) {
    out += R"(,"links":[)";
    for (size_t i = 0; i < s.links.size(); ++i) {
      if (i) out += ',';
      out += R"({"traceId":)";
      AppendString(out, s.links[i].first);
      out += R"(,"spanId":)";
      AppendString(out, s.links[i].second);
      out += '}';
    }
    out += ']';
  }
  // STATUS_CODE_ERROR with its message; unset otherwise (OpenTelemetry leaves OK to the application).
  if (!s.error.empty()) {
    out += R"(,"status":{"code":2,"message":)";
    AppendString(out, s.error);
    out += '}';
  }
  out += '}';
}

}  // namespace

std::string EncodeOtlpJson(const std::vector<Span>& spans,
                           const std::vector<std::pair<std::string, std::string>>& resource) {
  std::string out;
  out.reserve(512 * spans.size() + 256);
  out += R"({"resourceSpans":[{"resource":{"attributes":)";
  AppendAttributes(out, resource);
  out += R"(},"scopeSpans":[{"scope":{"name":"inference-server","version":)";
  AppendString(out, SERVING_VERSION);
  out += R"(},"spans":[)";
  for (size_t i = 0; i < spans.size(); ++i) {
    if (i) out += ',';
    AppendSpan(out, spans[i]);
  }
  out += "]}]}]}";
  return out;
}

bool TraceSampled(const TraceContext& trace, double rate) {
  if (!trace.parent_span_id.empty()) return trace.parent_sampled;
  if (rate >= 1.0) return true;
  if (rate <= 0.0 || trace.trace_id.size() != 32) return false;
  // The trace id's last 8 bytes, halved, against rate * 2^63: as OpenTelemetry's TraceIdRatioBased sampler.
  uint64_t low = 0;
  std::from_chars(trace.trace_id.data() + 16, trace.trace_id.data() + 32, low, 16);
  return (low >> 1) < static_cast<uint64_t>(rate * 9223372036854775808.0);
}

// A version's spans: the queue span of each sampled request, the execution span of each batch with one.
class Tracing::Version final : public VersionObserver {
 public:
  Version(Tracing* tracing, std::string model, int64_t version)
      : tracing_(tracing), model_(std::move(model)), version_(version) {}

  void Started(const InferRequest& r) override {
    if (!tracing_->Sampled(r.trace)) return;
    const Clock::time_point queued = r.received + r.decode_time;
    Span s;
    s.trace_id = r.trace.trace_id;
    s.span_id = NewSpanId();
    s.parent_span_id = r.trace.span_id;
    s.name = "queue";
    s.start_unix_ns = UnixNs(queued);
    s.end_unix_ns = UnixNs(queued + r.queue_time);
    s.attributes = {{"inference.model", model_}, {"inference.model_version", version_}};
    tracing_->Offer(std::move(s));
  }

  void Executed(const ExecutionReport& e) override {
    Span s;
    for (const InferRequest* r : e.batch) {
      if (!tracing_->Sampled(r->trace)) continue;
      if (s.trace_id.empty()) {
        s.trace_id = r->trace.trace_id;
        s.parent_span_id = r->trace.span_id;
      }
      s.links.emplace_back(r->trace.trace_id, r->trace.span_id);
    }
    if (s.trace_id.empty()) return;  // no request of the batch is traced
    s.span_id = NewSpanId();
    s.name = "execute " + model_;
    s.start_unix_ns = UnixNs(e.start);
    s.end_unix_ns = UnixNs(e.sliced);
    s.attributes = {{"inference.model", model_},
                    {"inference.model_version", version_},
                    {"inference.batch.requests", static_cast<int64_t>(e.requests)},
                    {"inference.batch.rows", e.rows}};
    s.events = {{"inputs stacked", UnixNs(e.stacked)}, {"model returned", UnixNs(e.executed)}};
    if (!e.status.ok()) s.error = e.status.message();
    tracing_->Offer(std::move(s));
  }

 private:
  Tracing* const tracing_;
  const std::string model_;
  const int64_t version_;
};

Tracing::Tracing(TracingOptions options, prometheus::Registry& registry) : options_(std::move(options)) {
  exported_ = &prometheus::BuildCounter()
                   .Name("inference_trace_spans_exported_total")
                   .Help("Trace spans the collector (--trace-url) took")
                   .Register(registry)
                   .Add({});
  auto& dropped = prometheus::BuildCounter()
                      .Name("inference_trace_spans_dropped_total")
                      .Help(
                          "Trace spans not exported, by reason: the queue was full, the collector failed or was "
                          "too slow, or the server stopped first")
                      .Register(registry);
  for (size_t d = 0; d < kDrops; ++d) dropped_[d] = &dropped.Add({{"reason", std::string(kDropNames[d])}});
  sender_ = std::thread([this] { Run(); });
  logging::Info("tracing", {{"collector", RedactedUrl(options_.url)},
                            {"sample_rate", options_.sample_rate},
                            {"queue", static_cast<int64_t>(options_.queue)},
                            {"batch", static_cast<int64_t>(options_.batch)},
                            {"delay_ms", static_cast<int64_t>(options_.delay.count())}});
}

Tracing::~Tracing() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  poster_.GiveUpAfter(std::chrono::seconds(1));  // a POST in flight to a stalled peer: abandoned then
  cv_.NotifyOne();
  sender_.join();
}

std::shared_ptr<VersionObserver> Tracing::ForVersion(const ModelSettings& model, int64_t version) {
  return std::make_shared<Version>(this, model.name, version);
}

void Tracing::Finished(const RequestOutcome& o, VersionObserver*) {
  const InferRequest& r = o.request;
  if (!Sampled(r.trace)) return;
  Span s;
  s.trace_id = r.trace.trace_id;
  s.span_id = r.trace.span_id;
  s.parent_span_id = r.trace.parent_span_id;
  s.tracestate = r.trace.tracestate;
  s.name = o.model.empty() ? std::string("infer") : "infer " + std::string(o.model);
  s.server = true;
  s.start_unix_ns = UnixNs(r.received);
  s.end_unix_ns = UnixNs(o.finished);
  s.attributes = {{"inference.protocol", r.protocol},
                  {"inference.request_id", r.id},
                  {"inference.status", std::string(StatusCodeName(o.status.code()))},
                  {"inference.input_bytes", static_cast<int64_t>(r.input_bytes)},
                  {"inference.output_bytes", static_cast<int64_t>(r.output_bytes)}};
  if (!o.model.empty()) {
    s.attributes.emplace_back("inference.model", std::string(o.model));
    s.attributes.emplace_back("inference.model_version", o.version);
  }
  if (r.decode_time > Clock::duration::zero()) s.events = {{"decoded", UnixNs(r.received + r.decode_time)}};
  if (!o.status.ok()) s.error = o.status.message();
  Offer(std::move(s));
}

void Tracing::Offer(Span span) {
  {
    MutexLock lock(mu_);
    if (!stopping_ && queue_.size() < options_.queue) {
      queue_.push_back(std::move(span));
      const bool full_batch = queue_.size() >= options_.batch;
      lock.Unlock();
      if (full_batch) cv_.NotifyOne();
      return;
    }
  }
  Dropped(kQueueFull, 1, "");
}

void Tracing::Dropped(Drop reason, size_t count, const std::string& detail) {
  dropped_[reason]->Increment(static_cast<double>(count));
  warnings_[reason].Hit(detail);
}

void Tracing::Run() {
  MutexLock lock(mu_);
  Clock::time_point deadline = Clock::time_point::max();  // once stopping: the end of the flush
  while (true) {
    // Wait for a full batch, the delay since this wait began (a span may have waited up to that), or the stop.
    const auto wake = Clock::now() + options_.delay;
    cv_.WaitUntil(mu_, wake, [this]() REQUIRES(mu_) { return stopping_ || queue_.size() >= options_.batch; });
    if (stopping_ && deadline == Clock::time_point::max()) deadline = Clock::now() + std::chrono::seconds(1);
    if (queue_.empty()) {
      if (stopping_) return;
      continue;
    }
    if (Clock::now() > deadline) {
      const size_t left = queue_.size();
      queue_.clear();
      lock.Unlock();
      Dropped(kShutdown, left, "");
      return;
    }
    std::vector<Span> batch;
    const size_t n = std::min(queue_.size(), options_.batch);
    batch.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    lock.Unlock();
    const std::string body = EncodeOtlpJson(batch, options_.resource);
    const auto timeout = deadline == Clock::time_point::max()
                             ? options_.timeout
                             : std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()) +
                                   std::chrono::milliseconds(1);
    const std::string error = poster_.Post(options_.url, {"Content-Type: application/json"}, body, timeout);
    if (error.empty()) {
      exported_->Increment(static_cast<double>(batch.size()));
    } else {
      Dropped(kExportFailed, batch.size(), error);
    }
    lock.Lock();
  }
}

}  // namespace serving
