// /v1/infer and /v1/models: decode the JSON body with the proto3 JSON mapping into the same messages the
// gRPC service receives, run them through frontends/common/v1_codec, and answer as Envoy's transcoder
// would (errors: the gRPC code's HTTP status and google.rpc.Status JSON).
#include "frontends/common/json_print.h"
#include "frontends/common/v1_codec.h"
#include "frontends/http/routes.h"

namespace serving::frontends {
namespace {

// {"rows": [{"values": [...]}]} or {"rows": [{"features": {...}}]}: an inference.v1 request nests four deep.
constexpr int kV1RequestDepth = 4;

void ReplyStatus(HttpReply& reply, const Status& status) {
  reply.Json(HttpStatusFor(status.code()), StatusToJson(status));
}

}  // namespace

void AddV1Routes(HttpServer* http, InferenceServer* server) {
  http->ErrorFormat("/v1", StatusToJson);
  http->Route(
      {"POST", "/v1/infer", auth::Category::kInference},
      [server](const HttpRequest& req, const std::shared_ptr<HttpReply>& reply) {
        auto read = [&req](inference::v1::InferRequest* in) { return ProtoFromJson(req.body, in, kV1RequestDepth); };
        RunV1Infer(
            *server, TransportRequest(req, "http-v1"), std::make_shared<V1Call>(), read,
            [](V1Call& call) { call.wire = ProtoToJson(call.out); },
            [reply](V1Call& call, const Status& status) {
              if (!status.ok()) return ReplyStatus(*reply, status);
              reply->Json(200, std::move(call.wire));
            });
      },
      HttpServer::RunOn::kWorker);

  http->Route({"GET", "/v1/models", auth::Category::kMetadata},
              [server](const HttpRequest&, const std::shared_ptr<HttpReply>& reply) {
                inference::v1::ListModelsResponse out;
                ListModelsV1(*server, &out);
                reply->Json(200, ProtoToJson(out));
              });
}

}  // namespace serving::frontends
