// inference.v1.InferenceService over gRPC: a thin shell around frontends/common/v1_codec.
#include "frontends/common/v1_codec.h"
#include "frontends/grpc/grpc_server.h"
#include "inference/v1/inference.grpc.pb.h"

namespace serving::frontends {
namespace {

class V1Service final
    : public inference::v1::InferenceService::WithRawCallbackMethod_Infer<inference::v1::InferenceService::CallbackService> {
 public:
  explicit V1Service(InferenceServer* server) : server_(server) {}

  grpc::ServerUnaryReactor* Infer(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* raw,
                                  grpc::ByteBuffer* raw_response) override {
    struct Call {
      inference::v1::InferRequest request;
      inference::v1::InferResponse response;
    };
    auto call = std::make_shared<Call>();
    auto* reactor = new CancellableReactor();
    CallContext context{"grpc-v1", TraceIdFrom(ctx), DeadlineFrom(ctx), reactor->cancelled};
    if (Status parsed = ParseRequest(server_, *raw, &call->request, context.protocol, context.trace_id);
        !parsed.ok()) {
      reactor->Finish(ToGrpc(parsed));
      return reactor;
    }
    RunV1Infer(*server_, call->request, std::move(context), &call->response,
               [reactor, call, raw_response](const Status& status) {
                 if (status.ok()) SerializeMessage(call->response, raw_response);
                 reactor->Finish(ToGrpc(status));
               });
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
