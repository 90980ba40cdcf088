// Counting failed gRPC TLS handshakes. gRPC closes a connection whose handshake fails or does not finish
// within GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, but counts nothing and offers no callback for it; the one
// place it reports each such connection is a debug line of its HTTP/2 server ("Handshaking failed:
// <status>", chttp2_server.cc, in the Debian 1.51 library and in current gRPC). The process's gRPC log
// function (server.cc) hands every library line here first; a handshake line becomes
// inference_transport_rejected_total{protocol="grpc",reason="tls_handshake_timeout"|"tls_handshake_failed"}
// and a rate-limited warning. An e2e test (test_grpc_tls.py) fails if a gRPC upgrade changes the line.
#pragma once

#include <grpc/support/log.h>

#include "observability/transport_metrics.h"

namespace serving::frontends {

// Starts (a TransportMetrics) or stops (null) counting; the GrpcServer calls it when it serves TLS.
void WatchGrpcHandshakes(TransportMetrics* transport);

// Whether `message` was a handshake line (counted when watching); any thread.
bool ObserveGrpcLibraryLine(gpr_log_severity severity, const char* message);

}  // namespace serving::frontends
