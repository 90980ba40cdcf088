// libFuzzer target: what a client's trace context becomes. The input is a `traceparent` value, a newline, a
// `tracestate` value, a newline, then a request id (all three come from the client); they are parsed as the
// transports do (core/inference_server.h: ParseTraceContext), sampled, and exported as a span's OTLP JSON
// (observability/tracing.h). No input may crash or leak; a parsed context holds only what W3C allows; the
// JSON always parses back, whatever bytes the client's id holds.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/inference_server.h"
#include "observability/tracing.h"

namespace {

bool LowerHex(std::string_view s, size_t size) {
  return s.size() == size && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto line = [&input]() {
    const size_t end = input.find('\n');
    std::string_view out = input.substr(0, end);
    input = end == std::string_view::npos ? std::string_view() : input.substr(end + 1);
    return out;
  };
  const std::string_view traceparent = line(), tracestate = line();
  const serving::TraceContext c = serving::ParseTraceContext(traceparent, tracestate);
  if (!c.trace_id.empty()) {
    if (!LowerHex(c.trace_id, 32) || !LowerHex(c.parent_span_id, 16) || c.tracestate.size() > 512) std::abort();
  } else if (!c.parent_span_id.empty() || !c.tracestate.empty() || c.parent_sampled) {
    std::abort();  // a malformed traceparent is ignored whole
  }
  (void)serving::TraceSampled(c, 0.5);

  serving::Span span;
  span.trace_id = c.trace_id.empty() ? std::string(32, 'a') : c.trace_id;
  span.span_id = std::string(16, 'b');
  span.parent_span_id = c.parent_span_id;
  span.tracestate = c.tracestate;
  span.name = "infer m";
  span.attributes = {{"inference.request_id", std::string(input)}};
  span.error = std::string(input);
  const std::string body = serving::EncodeOtlpJson({span}, {{"service.name", std::string(input)}});
  if (nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false).is_discarded()) std::abort();
  return 0;
}
