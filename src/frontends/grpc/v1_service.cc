// inference.v1.InferenceService over gRPC: a thin shell around frontends/common/v1_codec.
#include "frontends/common/v1_codec.h"
#include "frontends/grpc/grpc_server.h"
#include "inference/v1/inference.grpc.pb.h"

namespace serving::frontends {
namespace {

class V1Service final : public inference::v1::InferenceService::CallbackService {
 public:
  explicit V1Service(InferenceServer* server) : server_(server) {}

  grpc::ServerUnaryReactor* Infer(grpc::CallbackServerContext* ctx, const inference::v1::InferRequest* request,
                                  inference::v1::InferResponse* response) override {
    auto* reactor = ctx->DefaultReactor();
    CallContext call{"grpc-v1", TraceIdFrom(ctx), DeadlineFrom(ctx)};
    RunV1Infer(*server_, *request, std::move(call), response,
               [reactor](const Status& status) { reactor->Finish(ToGrpc(status)); });
    return reactor;
  }

  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* ctx, const inference::v1::ListModelsRequest*,
                                       inference::v1::ListModelsResponse* response) override {
    ListModelsV1(*server_, response);
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  InferenceServer* const server_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewV1Service(InferenceServer* server) { return std::make_unique<V1Service>(server); }

}  // namespace serving::frontends
