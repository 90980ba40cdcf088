#include "frontends/grpc/handshake_watch.h"

#include <atomic>
#include <cstring>
#include <string_view>

#include "observability/logger.h"

namespace serving::frontends {
namespace {

std::atomic<TransportMetrics*> g_transport{nullptr};
logging::RateLimitedWarning g_warning("grpc connection closed: no TLS session");

}  // namespace

void WatchGrpcHandshakes(TransportMetrics* transport) { g_transport.store(transport); }

bool ObserveGrpcLibraryLine(gpr_log_severity severity, const char* message) {
  constexpr std::string_view kPrefix = "Handshaking failed: ";
  if (severity != GPR_LOG_SEVERITY_DEBUG || std::strncmp(message, kPrefix.data(), kPrefix.size()) != 0) return false;
  const std::string_view reason(message + kPrefix.size());
  if (reason == "OK") return true;  // the server shut down after a handshake that succeeded
  TransportMetrics* transport = g_transport.load();
  if (transport == nullptr) return true;
  const bool timed_out = reason.find("timed out") != std::string_view::npos;
  transport->Count(timed_out ? TransportEvent::kGrpcTlsTimedOut : TransportEvent::kGrpcTlsFailed);
  g_warning.Hit(timed_out ? "no completed TLS handshake within --tls-handshake-timeout-s" : reason);
  return true;
}

}  // namespace serving::frontends
