// What the transports count about hostile or broken clients (docs/reliability.md), as an interface
// without prometheus-cpp: frontends report events here and Metrics turns them into series. Thread-safe.
#pragma once

namespace serving {

enum class TransportEvent {
  kHttpRefused,      // closed at once: over --http-max-connections
  kHttpTimedOut,     // closed: no complete request within --http-request-timeout-s
  kHttpAcceptError,  // accept() failed (e.g. EMFILE); accepting paused briefly
  kHttpMalformed,    // rejected before routing (duplicate Content-Length, ...)
  kHttpOverloaded,   // 503: the decode queue was full
  kGrpcMalformed,    // a gRPC message that did not parse
  kHttpTlsTimedOut,  // closed: no completed TLS handshake within --tls-handshake-timeout-s
  kHttpTlsFailed,    // the TLS handshake failed (not TLS, an old version, no or a bad client certificate)
  kGrpcTlsTimedOut,  // the same two on the gRPC port (counted from gRPC's own report, handshake_watch.h)
  kGrpcTlsFailed,
};

class TransportMetrics {
 public:
  virtual ~TransportMetrics() = default;
  virtual void Count(TransportEvent event) = 0;
  // +1 when an HTTP connection opens, -1 when it closes.
  virtual void AddHttpConnections(int delta) = 0;
};

}  // namespace serving
