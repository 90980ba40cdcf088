// KServe v2 GRPCInferenceService: decodes into the core request with frontends/common/v2_codec.
#include "frontends/common/v2_codec.h"
#include "frontends/grpc/call_gate.h"
#include "frontends/grpc/grpc_server.h"
#include "kserve/v2/grpc_predict_v2.grpc.pb.h"

namespace serving::frontends {
namespace {

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* ctx, const Status& status) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpc(status));
  return reactor;
}

template <typename Map>
std::vector<std::string> Keys(const Map& map) {
  std::vector<std::string> keys;
  for (const auto& [key, _] : map) keys.push_back(key);
  return keys;
}

class V2Service final : public inference::GRPCInferenceService::WithRawCallbackMethod_ModelInfer<
                            inference::GRPCInferenceService::CallbackService> {
 public:
  V2Service(InferenceServer* server, TransportMetrics* transport, const auth::Authorizer* authorizer, bool mutual_tls)
      : server_(server), transport_(transport), gate_(authorizer, "inference.GRPCInferenceService", mutual_tls) {}

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* ctx, const inference::ServerLiveRequest*,
                                       inference::ServerLiveResponse* response) override {
    if (auto* refused = gate_.Refuse(ctx, "ServerLive")) return refused;
    response->set_live(server_->Live());
    return Done(ctx, Status::Ok());
  }

  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* ctx, const inference::ServerReadyRequest*,
                                        inference::ServerReadyResponse* response) override {
    if (auto* refused = gate_.Refuse(ctx, "ServerReady")) return refused;
    response->set_ready(server_->Ready());
    return Done(ctx, Status::Ok());
  }

  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* ctx, const inference::ModelReadyRequest* request,
                                       inference::ModelReadyResponse* response) override {
    if (auto* refused = gate_.Refuse(ctx, "ModelReady")) return refused;
    auto ready = server_->ModelReady(request->name(), request->version());
    if (ready.ok()) response->set_ready(*ready);
    return Done(ctx, ready.status());
  }

  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* ctx, const inference::ServerMetadataRequest*,
                                           inference::ServerMetadataResponse* response) override {
    if (auto* refused = gate_.Refuse(ctx, "ServerMetadata")) return refused;
    ServerMetadataV2(response);
    return Done(ctx, Status::Ok());
  }

  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* ctx,
                                          const inference::ModelMetadataRequest* request,
                                          inference::ModelMetadataResponse* response) override {
    if (auto* refused = gate_.Refuse(ctx, "ModelMetadata")) return refused;
    return Done(ctx, ModelMetadataV2(*server_, request->name(), request->version(), response));
  }

  grpc::ServerUnaryReactor* ModelConfig(grpc::CallbackServerContext* ctx, const inference::ModelConfigRequest* request,
                                        inference::ModelConfigResponse* response) override {
    if (auto* refused = gate_.Refuse(ctx, "ModelConfig")) return refused;
    return Done(ctx, ModelConfigV2(*server_, request->name(), request->version(), response));
  }

  grpc::ServerUnaryReactor* ModelStatistics(grpc::CallbackServerContext* ctx,
                                            const inference::ModelStatisticsRequest* request,
                                            inference::ModelStatisticsResponse* response) override {
    if (auto* refused = gate_.Refuse(ctx, "ModelStatistics")) return refused;
    return Done(ctx, ModelStatisticsV2(*server_, request->name(), request->version(), response));
  }

  grpc::ServerUnaryReactor* RepositoryModelLoad(grpc::CallbackServerContext* ctx,
                                                const inference::RepositoryModelLoadRequest* request,
                                                inference::RepositoryModelLoadResponse*) override {
    if (auto* refused = gate_.Refuse(ctx, "RepositoryModelLoad")) return refused;
    return ModelControl(ctx, true, request->repository_name(), request->model_name(), Keys(request->parameters()));
  }

  grpc::ServerUnaryReactor* RepositoryModelUnload(grpc::CallbackServerContext* ctx,
                                                  const inference::RepositoryModelUnloadRequest* request,
                                                  inference::RepositoryModelUnloadResponse*) override {
    if (auto* refused = gate_.Refuse(ctx, "RepositoryModelUnload")) return refused;
    return ModelControl(ctx, false, request->repository_name(), request->model_name(), Keys(request->parameters()));
  }

  grpc::ServerUnaryReactor* RepositoryIndex(grpc::CallbackServerContext* ctx,
                                            const inference::RepositoryIndexRequest* request,
                                            inference::RepositoryIndexResponse* response) override {
    if (auto* refused = gate_.Refuse(ctx, "RepositoryIndex")) return refused;
    RepositoryIndexV2(*server_, request->ready(), response);
    return Done(ctx, Status::Ok());
  }

  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* raw,
                                       grpc::ByteBuffer* raw_response) override {
    std::string principal;
    if (auto* refused = gate_.Refuse(ctx, "ModelInfer", &principal)) return refused;
    struct Call {
      inference::ModelInferRequest request;
      inference::ModelInferResponse response;
    };
    auto call = std::make_shared<Call>();
    auto* reactor = new CancellableReactor();
    RequestDecoder decoder;
    decoder.parse = [&](InferRequest& r) {
      if (Status s = ParseMessage(transport_, *raw, &call->request); !s.ok()) return s;
      return DecodeV2Request(call->request, r);
    };
    // The request's tensors borrow from `call->request`, which the callback keeps alive.
    ResponseEncoder encoder;
    encoder.encode = [call, raw_response](const InferResponse& response) {
      EncodeV2Response(response, &call->response);
      SerializeMessage(call->response, raw_response);
    };
    encoder.send = [reactor](const StatusOr<InferResponse>& result) { reactor->Finish(ToGrpc(result.status())); };
    server_->Infer(TransportRequest(ctx, "grpc-v2", *reactor, std::move(principal), gate_.Identity(ctx)), decoder,
                   std::move(encoder));
    return reactor;
  }

 private:
  // Load and unload run on the core's control thread; the call finishes from there (never blocking a gRPC
  // callback thread while a model loads).
  grpc::ServerUnaryReactor* ModelControl(grpc::CallbackServerContext* ctx, bool load, const std::string& repository,
                                         const std::string& model, const std::vector<std::string>& parameters) {
    auto* reactor = ctx->DefaultReactor();
    ModelControlV2(*server_, load, repository, model, parameters,
                   [reactor](const Status& status) { reactor->Finish(ToGrpc(status)); });
    return reactor;
  }

  InferenceServer* const server_;
  TransportMetrics* const transport_;
  const CallGate gate_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewV2Service(InferenceServer* server, TransportMetrics* transport,
                                            const auth::Authorizer* authorizer, bool mutual_tls) {
  return std::make_unique<V2Service>(server, transport, authorizer, mutual_tls);
}

}  // namespace serving::frontends
