// The gRPC frontend: inference.v1.InferenceService, the KServe v2 GRPCInferenceService, gRPC's own
// health service (overall "" plus one service name per model) and server reflection, on one port.
// Services use gRPC's callback API: no thread per request; replies are finished from the scheduler's
// worker threads.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/service_type.h>

#include <chrono>
#include <memory>
#include <string>

#include "core/inference_server.h"

namespace serving::frontends {

class GrpcServer {
 public:
  struct Options {
    std::string address = "0.0.0.0:50051";
    int max_message_bytes = 64 << 20;
  };

  explicit GrpcServer(InferenceServer* server);
  ~GrpcServer();

  // Binds and starts serving; returns the bound port (useful with port 0).
  StatusOr<int> Start(const Options& options);
  // Re-reads readiness into the health service (overall and per model). Thread-safe.
  void UpdateHealth();
  // Stops accepting calls; waits for running ones until `deadline`, then cancels what is left.
  void Shutdown(std::chrono::system_clock::time_point deadline);

 private:
  InferenceServer* const server_;
  std::unique_ptr<grpc::Service> v1_;
  std::unique_ptr<grpc::Service> v2_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::mutex health_mu_;
  bool shut_down_ = false;  // guarded by health_mu_
};

// Services (v1_service.cc, v2_service.cc).
std::unique_ptr<grpc::Service> NewV1Service(InferenceServer* server);
std::unique_ptr<grpc::Service> NewV2Service(InferenceServer* server);

// Shared by both services: trace id from `traceparent` metadata, the call's deadline, and the mapping
// of a core Status to a grpc::Status.
std::string TraceIdFrom(const grpc::CallbackServerContext* ctx);
Clock::time_point DeadlineFrom(const grpc::CallbackServerContext* ctx);
grpc::Status ToGrpc(const Status& status);

// Counts a message that did not parse in inference_transport_rejected_total{protocol="grpc"}.
void CountMalformed(InferenceServer* server);

// The inference methods take their messages raw (gRPC's WithRawCallbackMethod_*), so a message that does
// not parse is answered INVALID_ARGUMENT, counted and logged like any rejected request (gRPC alone answers
// such a call with neither a log line nor a metric). Returns that status for the caller to finish with.
template <typename Message>
Status ParseRequest(InferenceServer* server, const grpc::ByteBuffer& raw, Message* out, const std::string& protocol,
                    const std::string& trace_id) {
  grpc::ByteBuffer copy(raw);  // Deserialize consumes its buffer; the copy shares the slices
  if (grpc::SerializationTraits<Message>::Deserialize(&copy, out).ok()) return Status::Ok();
  const Status malformed = InvalidArgument("the request is not a valid " + out->GetTypeName() + " message");
  CountMalformed(server);
  server->Reject(malformed, protocol, trace_id);
  return malformed;
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
