#include "frontends/grpc/handshake_watch.h"

#include <gtest/gtest.h>

#include <vector>

namespace serving::frontends {
namespace {

struct Recorder : TransportMetrics {
  std::vector<TransportEvent> events;
  void Count(TransportEvent event) override { events.push_back(event); }
  void AddHttpConnections(int) override {}
};

TEST(HandshakeWatch, CountsGrpcsHandshakeLinesByReasonAndOnlyWhileWatching) {
  Recorder recorder;
  EXPECT_TRUE(ObserveGrpcLibraryLine(GPR_LOG_SEVERITY_DEBUG, "Handshaking failed: UNKNOWN:Handshake failed"));
  EXPECT_TRUE(recorder.events.empty());  // not watching yet
  WatchGrpcHandshakes(&recorder);
  EXPECT_TRUE(ObserveGrpcLibraryLine(GPR_LOG_SEVERITY_DEBUG, "Handshaking failed: UNKNOWN:Handshake failed"));
  EXPECT_TRUE(
      ObserveGrpcLibraryLine(GPR_LOG_SEVERITY_DEBUG, "Handshaking failed: DEADLINE_EXCEEDED:Handshake timed out"));
  EXPECT_TRUE(ObserveGrpcLibraryLine(GPR_LOG_SEVERITY_DEBUG, "Handshaking failed: OK"));  // shutdown: not a failure
  EXPECT_FALSE(ObserveGrpcLibraryLine(GPR_LOG_SEVERITY_ERROR, "Handshaking failed: UNKNOWN:x"));
  EXPECT_FALSE(ObserveGrpcLibraryLine(GPR_LOG_SEVERITY_DEBUG, "gRPC EXPERIMENT tcp_read_chunks ON"));
  WatchGrpcHandshakes(nullptr);
  EXPECT_TRUE(ObserveGrpcLibraryLine(GPR_LOG_SEVERITY_DEBUG, "Handshaking failed: UNKNOWN:x"));
  EXPECT_EQ(recorder.events,
            (std::vector<TransportEvent>{TransportEvent::kGrpcTlsFailed, TransportEvent::kGrpcTlsTimedOut}));
}

}  // namespace
}  // namespace serving::frontends
