// KServe v2 GRPCInferenceService: decodes into the core request with frontends/common/v2_codec.
#include "frontends/common/v2_codec.h"
#include "frontends/grpc/grpc_server.h"
#include "kserve/v2/grpc_predict_v2.grpc.pb.h"

namespace serving::frontends {
namespace {

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* ctx, const Status& status) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpc(status));
  return reactor;
}

class V2Service final
    : public inference::GRPCInferenceService::WithRawCallbackMethod_ModelInfer<
          inference::GRPCInferenceService::CallbackService> {
 public:
  explicit V2Service(InferenceServer* server) : server_(server) {}

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* ctx, const inference::ServerLiveRequest*,
                                       inference::ServerLiveResponse* response) override {
    response->set_live(server_->Live());
    return Done(ctx, Status::Ok());
  }

  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* ctx, const inference::ServerReadyRequest*,
                                        inference::ServerReadyResponse* response) override {
    response->set_ready(server_->Ready());
    return Done(ctx, Status::Ok());
  }

  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* ctx, const inference::ModelReadyRequest* request,
                                       inference::ModelReadyResponse* response) override {
    auto ready = ModelReadyV2(*server_, request->name(), request->version());
    if (ready.ok()) response->set_ready(*ready);
    return Done(ctx, ready.status());
  }

  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* ctx, const inference::ServerMetadataRequest*,
                                           inference::ServerMetadataResponse* response) override {
    ServerMetadataV2(response);
    return Done(ctx, Status::Ok());
  }

  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* ctx,
                                          const inference::ModelMetadataRequest* request,
                                          inference::ModelMetadataResponse* response) override {
    return Done(ctx, ModelMetadataV2(*server_, request->name(), request->version(), response));
  }

  grpc::ServerUnaryReactor* RepositoryIndex(grpc::CallbackServerContext* ctx,
                                            const inference::RepositoryIndexRequest* request,
                                            inference::RepositoryIndexResponse* response) override {
    RepositoryIndexV2(*server_, request->ready(), response);
    return Done(ctx, Status::Ok());
  }

  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* raw,
                                       grpc::ByteBuffer* raw_response) override {
    struct Call {
      inference::ModelInferRequest request;
      inference::ModelInferResponse response;
    };
    auto call = std::make_shared<Call>();
    if (Status parsed = ParseRequest(server_, *raw, &call->request, "grpc-v2", TraceIdFrom(ctx)); !parsed.ok())
      return Done(ctx, parsed);
    auto decoded = DecodeV2Request(call->request);
    if (!decoded.ok()) {
      server_->Reject(decoded.status(), "grpc-v2", TraceIdFrom(ctx), call->request.id());
      return Done(ctx, decoded.status());
    }
    decoded->protocol = "grpc-v2";
    decoded->trace_id = TraceIdFrom(ctx);
    decoded->deadline = DeadlineFrom(ctx);
    auto* reactor = new CancellableReactor();
    decoded->cancelled = reactor->cancelled;
    // The request's tensors borrow from `call->request`, which the callback keeps alive.
    server_->Infer(std::move(decoded).value(), [reactor, call, raw_response](StatusOr<InferResponse> result) {
      if (result.ok()) {
        EncodeV2Response(*result, &call->response);
        SerializeMessage(call->response, raw_response);
      }
      reactor->Finish(ToGrpc(result.status()));
    });
    return reactor;
  }

 private:
  InferenceServer* const server_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewV2Service(InferenceServer* server) { return std::make_unique<V2Service>(server); }

}  // namespace serving::frontends
