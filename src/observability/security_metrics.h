// What the authorization and TLS layers count (docs/security.md), as an interface without prometheus-cpp:
// Metrics turns the events into series. Thread-safe.
#pragma once

#include <string_view>

namespace serving {

class SecurityMetrics {
 public:
  virtual ~SecurityMetrics() = default;
  // inference_auth_failures_total{transport, reason}: reason is missing, malformed, invalid, expired, scope
  // or restricted.
  virtual void CountAuthFailure(std::string_view transport, std::string_view reason) = 0;
  // inference_secret_reloads_total{secret, result}: a tokens file or certificate re-read after it changed;
  // result "ok" or "error" (the previous one is kept).
  virtual void CountSecretReload(std::string_view secret, bool ok) = 0;
};

}  // namespace serving
