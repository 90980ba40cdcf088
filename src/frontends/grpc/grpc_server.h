// The gRPC frontend: inference.v1.InferenceService, the KServe v2 GRPCInferenceService, the gRPC health
// protocol (overall "" plus one service name per model; our own service, health_service.h) and server
// reflection (only without authorization), on one port.
// Services use gRPC's callback API: no thread per request; replies are finished from the scheduler's
// worker threads.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/service_type.h>

#include <chrono>
#include <memory>
#include <string>

#include "auth/authorizer.h"
#include "core/inference_server.h"
#include "core/mutex.h"
#include "observability/transport_metrics.h"

namespace serving::frontends {

class HealthService;

class GrpcServer {
 public:
  struct Options {
    std::string address = "0.0.0.0:50051";
    int max_message_bytes = 64 << 20;
    const auth::Authorizer* authorizer = nullptr;  // optional: every call is allowed without one
    bool reflection = true;                        // gRPC server reflection
    // TLS: the server's certificate chain and key (PEM files); both empty: plaintext. With client_ca, a
    // client must present a certificate that CA signed (mutual TLS). The files are watched and re-read when
    // they change (a new connection gets the new certificate; open ones keep theirs).
    std::string tls_cert;
    std::string tls_key;
    std::string tls_client_ca;
    int tls_reload_s = 1;
    int handshake_timeout_s = 10;  // a connection that has not completed its TLS handshake by then is closed
  };

  // `transport` may be null (no metrics).
  GrpcServer(InferenceServer* server, TransportMetrics* transport);
  ~GrpcServer();

  // Binds and starts serving; returns the bound port (useful with port 0).
  StatusOr<int> Start(const Options& options);
  // Re-reads readiness into the health service (overall and per model). Thread-safe.
  void UpdateHealth();
  // Stops accepting calls; waits for running ones until `deadline`, then cancels what is left.
  void Shutdown(std::chrono::system_clock::time_point deadline);

 private:
  InferenceServer* const server_;
  TransportMetrics* const transport_;
  std::unique_ptr<grpc::Service> v1_;
  std::unique_ptr<grpc::Service> v2_;
  std::unique_ptr<HealthService> health_;
  std::unique_ptr<grpc::Server> grpc_server_;
  Mutex health_mu_;
  bool shut_down_ GUARDED_BY(health_mu_) = false;
};

// Services (v1_service.cc, v2_service.cc); `authorizer` may be null; `mutual_tls`: clients present certificates.
std::unique_ptr<grpc::Service> NewV1Service(InferenceServer* server, TransportMetrics* transport,
                                            const auth::Authorizer* authorizer, bool mutual_tls);
std::unique_ptr<grpc::Service> NewV2Service(InferenceServer* server, TransportMetrics* transport,
                                            const auth::Authorizer* authorizer, bool mutual_tls);

// Shared by both services: the mapping of a core Status to a grpc::Status.
grpc::Status ToGrpc(const Status& status);

class CancellableReactor;
// The transport's part of a core request: protocol, trace id from `traceparent` metadata, the call's
// deadline, the receive time (now), the reactor's cancellation flag, who the authorizer let in and the TLS
// client identity.
InferRequest TransportRequest(const grpc::CallbackServerContext* ctx, const char* protocol,
                              const CancellableReactor& reactor, std::string principal, std::string tls_identity);

// Counts a message that did not parse in inference_transport_rejected_total{protocol="grpc"}.
void CountMalformed(TransportMetrics* transport);

// The inference methods take their messages raw (gRPC's WithRawCallbackMethod_*) and parse them in the
// core's parse step, so a message that does not parse is answered INVALID_ARGUMENT, counted and logged
// like any rejected request (gRPC alone answers such a call with neither a log line nor a metric).
template <typename Message>
Status ParseMessage(TransportMetrics* transport, const grpc::ByteBuffer& raw, Message* out) {
  grpc::ByteBuffer copy(raw);  // Deserialize consumes its buffer; the copy shares the slices
  if (grpc::SerializationTraits<Message>::Deserialize(&copy, out).ok()) return Status::Ok();
  CountMalformed(transport);
  return InvalidArgument("the request is not a valid " + out->GetTypeName() + " message");
}

template <typename Message>
void SerializeMessage(const Message& message, grpc::ByteBuffer* out) {
  bool own_buffer = false;
  (void)grpc::SerializationTraits<Message>::Serialize(message, out, &own_buffer);  // fails only past 2 GiB
}

// The reactor of the inference methods: records the client's cancellation (or an expired deadline) where
// the core can see it, so a call still queued is not run. Deletes itself when the call is done.
class CancellableReactor final : public grpc::ServerUnaryReactor {
 public:
  std::shared_ptr<std::atomic<bool>> cancelled = std::make_shared<std::atomic<bool>>(false);
  void OnCancel() override { cancelled->store(true); }
  void OnDone() override { delete this; }
};

}  // namespace serving::frontends
