#include "server/trace_config.h"

#include <charconv>
#include <string_view>

namespace serving {
namespace {

constexpr const char* kTritonDefaultUrl = "http://localhost:4318/v1/traces";

bool ParseInt(std::string_view v, int64_t* out) {
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), *out);
  return ec == std::errc() && p == v.data() + v.size();
}

// One Triton setting: "[mode,]key=value". `level` is what level= said, if it was given.
Status ApplyOne(const std::string& setting, ServerOptions& o, std::string* level) {
  std::string_view s = setting;
  std::string_view mode;
  if (const size_t comma = s.find(','); comma != std::string_view::npos && comma < s.find('=')) {
    mode = s.substr(0, comma);
    s = s.substr(comma + 1);
  }
  const size_t eq = s.find('=');
  if (eq == std::string_view::npos || eq == 0)
    return InvalidArgument("--trace-config " + setting + ": expected [opentelemetry,]key=value");
  const std::string_view key = s.substr(0, eq), value = s.substr(eq + 1);
  auto bad = [&](const std::string& why) { return InvalidArgument("--trace-config " + setting + ": " + why); };
  if (mode == "triton")
    return bad("Triton's own trace files are not written; spans go to an OpenTelemetry collector (mode=opentelemetry)");
  if (!mode.empty() && mode != "opentelemetry") return bad("unknown mode '" + std::string(mode) + "'");
  int64_t n = 0;
  if (key == "mode") {
    if (value != "opentelemetry")
      return bad("only mode=opentelemetry is served (Triton's mode=triton writes trace files)");
  } else if (key == "level") {
    if (value != "OFF" && value != "TIMESTAMPS")
      return bad(value == "TENSORS" ? "tensors are not put in spans; use --payload-log-url for them"
                                    : "level must be OFF or TIMESTAMPS");
    *level = value;
  } else if (key == "rate") {
    if (!ParseInt(value, &n) || n < 1) return bad("rate must be a whole number of requests, at least 1");
    o.trace_sample_rate = 1.0 / static_cast<double>(n);
  } else if (key == "count") {
    if (!ParseInt(value, &n) || n != -1) return bad("only count=-1 (no limit) is supported; sample with rate");
  } else if (key == "url") {
    const bool scheme = value.rfind("http://", 0) == 0 || value.rfind("https://", 0) == 0;
    o.trace_url = scheme ? std::string(value) : "http://" + std::string(value);  // Triton's have none
  } else if (key == "resource") {
    o.trace_resource.emplace_back(value);
  } else if (key == "bsp_max_queue_size") {
    if (!ParseInt(value, &o.trace_queue)) return bad("not a number");
  } else if (key == "bsp_max_export_batch_size") {
    if (!ParseInt(value, &o.trace_batch)) return bad("not a number");
  } else if (key == "bsp_schedule_delay") {
    if (!ParseInt(value, &o.trace_delay_ms)) return bad("not a number");
  } else {
    return bad("unknown setting '" + std::string(key) + "'");
  }
  return Status::Ok();
}

}  // namespace

Status ApplyTraceConfig(ServerOptions& o) {
  std::string level;
  for (const auto& setting : o.trace_config) SERVING_RETURN_IF_ERROR(ApplyOne(setting, o, &level));
  // As Triton: TIMESTAMPS turns tracing on (to its default collector unless a url is given), OFF turns it off.
  if (level == "TIMESTAMPS" && o.trace_url.empty()) o.trace_url = kTritonDefaultUrl;
  if (level == "OFF") o.trace_url.clear();
  if (!o.trace_url.empty() && o.trace_url.rfind("http://", 0) != 0 && o.trace_url.rfind("https://", 0) != 0)
    return InvalidArgument("--trace-url must start with http:// or https://");
  if (o.trace_sample_rate < 0 || o.trace_sample_rate > 1)
    return InvalidArgument("--trace-sample-rate must be within 0..1");
  if (o.trace_queue < 1 || o.trace_queue > 1000000) return InvalidArgument("--trace-queue must be within 1..1000000");
  if (o.trace_batch < 1 || o.trace_batch > o.trace_queue)
    return InvalidArgument("--trace-batch must be within 1..--trace-queue");
  if (o.trace_delay_ms < 1 || o.trace_delay_ms > 600000)
    return InvalidArgument("--trace-delay-ms must be within 1..600000");
  for (const auto& r : o.trace_resource)
    if (r.find('=') == std::string::npos || r.front() == '=')
      return InvalidArgument("--trace-resource " + r + ": expected key=value");
  return Status::Ok();
}

}  // namespace serving
