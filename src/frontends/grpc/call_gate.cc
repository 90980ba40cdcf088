#include "frontends/grpc/call_gate.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/security/auth_context.h>

#include "grpc/health/v1/health.grpc.pb.h"
#include "inference/v1/inference.grpc.pb.h"
#include "kserve/v2/grpc_predict_v2.grpc.pb.h"

namespace serving::frontends {

using auth::Category;

const std::vector<GrpcMethod>& GrpcMethods() {
  static const std::vector<GrpcMethod> methods = {
      {"/inference.v1.InferenceService/Infer", Category::kInference},
      {"/inference.v1.InferenceService/ListModels", Category::kMetadata},
      {"/inference.GRPCInferenceService/ServerLive", Category::kHealth},
      {"/inference.GRPCInferenceService/ServerReady", Category::kHealth},
      {"/inference.GRPCInferenceService/ModelReady", Category::kHealth},
      {"/inference.GRPCInferenceService/ServerMetadata", Category::kMetadata},
      {"/inference.GRPCInferenceService/ModelMetadata", Category::kMetadata},
      {"/inference.GRPCInferenceService/ModelInfer", Category::kInference},
      {"/inference.GRPCInferenceService/RepositoryIndex", Category::kRepositoryIndex},
      {"/inference.GRPCInferenceService/ModelConfig", Category::kModelConfig},
      {"/inference.GRPCInferenceService/ModelStatistics", Category::kStatistics},
      {"/inference.GRPCInferenceService/RepositoryModelLoad", Category::kModelControl},
      {"/inference.GRPCInferenceService/RepositoryModelUnload", Category::kModelControl},
      {"/grpc.health.v1.Health/Check", Category::kHealth},
      {"/grpc.health.v1.Health/Watch", Category::kHealth},
  };
  return methods;
}

namespace {

// The row of "/<service>/<method>", matched without building the name (this runs on every call).
const GrpcMethod* Find(std::string_view service, std::string_view method) {
  for (const auto& m : GrpcMethods()) {
    const std::string_view n = m.name;
    if (n.size() == service.size() + method.size() + 2 && n[0] == '/' && n.substr(1, service.size()) == service &&
        n[service.size() + 1] == '/' && n.substr(service.size() + 2) == method)
      return &m;
  }
  return nullptr;
}

}  // namespace

std::vector<std::pair<std::string, const GrpcMethod*>> DescribedGrpcMethods() {
  std::vector<std::pair<std::string, const GrpcMethod*>> out;
  for (const char* service :
       {inference::v1::InferenceService::service_full_name(), inference::GRPCInferenceService::service_full_name(),
        grpc::health::v1::Health::service_full_name()}) {
    const auto* descriptor = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
    for (int i = 0; descriptor && i < descriptor->method_count(); ++i) {
      const std::string method(descriptor->method(i)->name());
      out.emplace_back("/" + std::string(service) + "/" + method, Find(service, method));
    }
  }
  return out;
}

std::string TlsIdentity(const grpc::ServerContextBase* ctx) {
  const auto auth = ctx->auth_context();
  if (!auth || !auth->IsPeerAuthenticated()) return "";
  for (const char* property : {"x509_subject", "x509_common_name"}) {
    auto values = auth->FindPropertyValues(property);
    if (!values.empty()) return std::string(values.front().data(), values.front().size());
  }
  return "";
}

grpc::Status CallGate::Check(grpc::CallbackServerContext* ctx, std::string_view method, std::string* principal) const {
  if (!authorizer_ || !authorizer_->enabled()) return grpc::Status::OK;
  const GrpcMethod* known = Find(service_, method);
  if (!known)
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        "/" + service_ + "/" + std::string(method) + " has no authorization category");
  const std::string identity = Identity(ctx);
  auth::RequestContext context;
  context.transport = auth::Transport::kGrpc;
  context.operation = known->name;
  context.category = known->category;
  context.lazy_peer = [ctx] { return ctx->peer(); };
  context.tls_identity = identity;
  context.header = [ctx](std::string_view key) {
    auto [begin, end] = ctx->client_metadata().equal_range(grpc::string_ref(key.data(), key.size()));
    if (begin == end) return std::string();
    return std::string(begin->second.data(), begin->second.size());
  };
  auth::Decision decision = authorizer_->Authorize(context);
  if (!decision.ok())
    return grpc::Status(static_cast<grpc::StatusCode>(decision.status.code()), decision.status.message());
  if (principal) *principal = std::move(decision.principal);
  return grpc::Status::OK;
}

grpc::ServerUnaryReactor* CallGate::Refuse(grpc::CallbackServerContext* ctx, std::string_view method,
                                           std::string* principal) const {
  grpc::Status status = Check(ctx, method, principal);
  if (status.ok()) return nullptr;
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

}  // namespace serving::frontends
