// grpc.health.v1.Health, ours rather than gRPC's default service, so that its calls pass the authorization
// seam like every other method (a server cannot refuse calls to gRPC's own services on a plaintext port).
// Check answers a service's status (NOT_FOUND for an unknown one, as gRPC's does); Watch sends the status now
// and on every change until the client leaves or the server shuts down.
//
// Threading: SetStatus() and Shutdown() from any thread; the methods run on gRPC's callback threads.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "core/mutex.h"
#include "frontends/grpc/call_gate.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace serving::frontends {

class HealthService final : public grpc::health::v1::Health::CallbackService {
 public:
  HealthService(const auth::Authorizer* authorizer, bool mutual_tls)
      : gate_(authorizer, "grpc.health.v1.Health", mutual_tls) {}

  // The status of `service` ("" is the server as a whole); no effect after Shutdown().
  void SetStatus(const std::string& service, bool serving);
  // Every service NOT_SERVING for good; open watches get that and end.
  void Shutdown();

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* ctx, const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::health::v1::HealthCheckResponse* response) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* ctx, const grpc::health::v1::HealthCheckRequest* request) override;

  class Watcher;  // health_service.cc

 private:
  using ServingStatus = grpc::health::v1::HealthCheckResponse::ServingStatus;
  ServingStatus StatusOf(const std::string& service) const REQUIRES(mu_);
  void Forget(Watcher* watcher);

  const CallGate gate_;
  mutable Mutex mu_;
  std::map<std::string, bool> serving_ GUARDED_BY(mu_);
  std::set<Watcher*> watchers_ GUARDED_BY(mu_);
  bool shut_down_ GUARDED_BY(mu_) = false;
};

}  // namespace serving::frontends
