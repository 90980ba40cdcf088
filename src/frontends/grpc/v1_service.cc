// inference.v1.InferenceService over gRPC: a thin shell around frontends/common/v1_codec.
#include "frontends/common/v1_codec.h"
#include "frontends/grpc/call_gate.h"
#include "frontends/grpc/grpc_server.h"
#include "inference/v1/inference.grpc.pb.h"

namespace serving::frontends {
namespace {

class V1Service final : public inference::v1::InferenceService::WithRawCallbackMethod_Infer<
                            inference::v1::InferenceService::CallbackService> {
 public:
  V1Service(InferenceServer* server, TransportMetrics* transport, const auth::Authorizer* authorizer, bool mutual_tls)
      : server_(server), transport_(transport), gate_(authorizer, "inference.v1.InferenceService", mutual_tls) {}

  grpc::ServerUnaryReactor* Infer(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* raw,
                                  grpc::ByteBuffer* raw_response) override {
    std::string principal;
    if (auto* refused = gate_.Refuse(ctx, "Infer", &principal)) return refused;
    auto* reactor = new CancellableReactor();
    auto read = [this, raw](inference::v1::InferRequest* in) { return ParseMessage(transport_, *raw, in); };
    RunV1Infer(
        *server_, TransportRequest(ctx, "grpc-v1", *reactor, std::move(principal), gate_.Identity(ctx)),
        std::make_shared<V1Call>(), read, [raw_response](V1Call& call) { SerializeMessage(call.out, raw_response); },
        [reactor](V1Call&, const Status& status) { reactor->Finish(ToGrpc(status)); });
    return reactor;
  }

  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* ctx, const inference::v1::ListModelsRequest*,
                                       inference::v1::ListModelsResponse* response) override {
    if (auto* refused = gate_.Refuse(ctx, "ListModels")) return refused;
    ListModelsV1(*server_, response);
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  InferenceServer* const server_;
  TransportMetrics* const transport_;
  const CallGate gate_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewV1Service(InferenceServer* server, TransportMetrics* transport,
                                            const auth::Authorizer* authorizer, bool mutual_tls) {
  return std::make_unique<V1Service>(server, transport, authorizer, mutual_tls);
}

}  // namespace serving::frontends
