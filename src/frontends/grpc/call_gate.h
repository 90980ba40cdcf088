// The gRPC side of the one authorization seam: every method of our services asks its CallGate first, before
// reading its request. The category of each method is in one table (kGrpcMethods), the same one
// `inference-server --list-endpoints` prints; a method missing from it is refused, so the table cannot be
// forgotten silently. The health service is ours for that reason (health_service.h); gRPC's server reflection,
// which cannot be gated, is served only while no authorization is configured (docs/security.md).
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>
#include <string_view>
#include <vector>

#include "auth/authorizer.h"

namespace serving::frontends {

struct GrpcMethod {
  std::string_view name;  // "/inference.GRPCInferenceService/ModelInfer"
  auth::Category category;
};
// Every method of the services this server implements.
const std::vector<GrpcMethod>& GrpcMethods();
// The methods of the services this server registers as their protobuf descriptors list them, each with
// its category from GrpcMethods() (null when the table lacks it: such a method is refused).
std::vector<std::pair<std::string, const GrpcMethod*>> DescribedGrpcMethods();

// The verified TLS client certificate's subject (or common name) of a call; empty without one.
std::string TlsIdentity(const grpc::ServerContextBase* ctx);

class CallGate {
 public:
  // `authorizer` may be null (everything is allowed). `service`: "inference.GRPCInferenceService".
  // `mutual_tls`: clients present certificates, so calls have a TLS identity (looked up only then: it costs an
  // allocation per call).
  CallGate(const auth::Authorizer* authorizer, std::string service, bool mutual_tls)
      : authorizer_(authorizer), service_(std::move(service)), mutual_tls_(mutual_tls) {}

  // The call's TLS client identity; empty without mutual TLS.
  std::string Identity(const grpc::ServerContextBase* ctx) const { return mutual_tls_ ? TlsIdentity(ctx) : ""; }

  // OK when the call of `method` (its name within the service) may go on, with `*principal` (optional) set to
  // the token's name; otherwise the refusal.
  grpc::Status Check(grpc::CallbackServerContext* ctx, std::string_view method, std::string* principal = nullptr) const;
  // For unary methods: null when the call may go on; otherwise a reactor already finished with the refusal, for
  // the handler to return.
  grpc::ServerUnaryReactor* Refuse(grpc::CallbackServerContext* ctx, std::string_view method,
                                   std::string* principal = nullptr) const;

 private:
  const auth::Authorizer* const authorizer_;
  const std::string service_;
  const bool mutual_tls_;
};

}  // namespace serving::frontends
