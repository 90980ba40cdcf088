// KServe v2 REST: health, server and model metadata, readiness, inference (JSON or binary tensor data)
// and the repository index. Metadata is built by frontends/common/v2_codec, as for gRPC.
#include <charconv>
#include <nlohmann/json.hpp>

#include "frontends/common/json_limits.h"
#include "frontends/common/v2_codec.h"
#include "frontends/http/routes.h"
#include "frontends/http/v2_json.h"

namespace serving::frontends {
namespace {

void ReplyError(HttpReply& reply, const Status& status) {
  reply.Json(HttpStatusFor(status.code()), ErrorJson(status.message()));
}

// The headers that frame a v2 body: Inference-Header-Content-Length (the binary extension) and
// Content-Encoding (only identity).
StatusOr<std::optional<size_t>> BodyFraming(const HttpRequest& req) {
  std::optional<size_t> header_length;
  if (std::string h = req.Header("Inference-Header-Content-Length"); !h.empty()) {
    size_t n = 0;
    auto [ptr, ec] = std::from_chars(h.data(), h.data() + h.size(), n);
    if (ec != std::errc() || ptr != h.data() + h.size())
      return InvalidArgument("Inference-Header-Content-Length " + Quote(h) + " is not a number");
    header_length = n;
  }
  if (std::string enc = req.Header("Content-Encoding"); !enc.empty() && enc != "identity")
    return InvalidArgument("Content-Encoding " + Quote(enc) + " is not supported");
  return header_length;
}

void Infer(InferenceServer* server, const HttpRequest& req, const std::string& model, const std::string& version,
           const std::shared_ptr<HttpReply>& reply) {
  struct Call {
    V2HttpInfer in;
    V2HttpBody out;
  };
  auto call = std::make_shared<Call>();
  RequestDecoder decoder;
  decoder.parse = [&](InferRequest& r) {
    SERVING_ASSIGN_OR_RETURN(auto framing, BodyFraming(req));
    SERVING_ASSIGN_OR_RETURN(auto parsed, ParseV2InferBody(req.body, framing, req.body_readable));
    call->in = std::move(parsed);
    r.id = std::move(call->in.request.id);
    r.inputs = std::move(call->in.request.inputs);
    r.requested_outputs = std::move(call->in.request.requested_outputs);
    r.priority = call->in.request.priority;
    r.timeout_us = call->in.request.timeout_us;
    return Status::Ok();
  };
  InferRequest request = TransportRequest(req, "http-v2");
  request.model = model;
  request.version = version;
  // Binary inputs borrow from the request body, which the connection keeps until the reply is sent.
  ResponseEncoder encoder;
  encoder.encode = [call](const InferResponse& response) { call->out = EncodeV2InferResponse(response, call->in); };
  encoder.send = [reply, call](const StatusOr<InferResponse>& result) {
    if (!result.ok()) return ReplyError(*reply, result.status());
    V2HttpBody& body = call->out;
    if (!body.header_length) return reply->Json(200, std::move(body.bytes));
    reply->Send(200, std::move(body.bytes),
                {{"Content-Type", "application/octet-stream"},
                 {"Inference-Header-Content-Length", std::to_string(*body.header_length)}});
  };
  server->Infer(std::move(request), decoder, std::move(encoder));
}

// The body of POST /v2/repository/index and /v2/repository/models/{m}/load|unload: an optional JSON object.
StatusOr<nlohmann::json> OptionalObject(const HttpRequest& req, int max_depth) {
  if (req.body.empty()) return nlohmann::json::object();
  if (Status s = CheckJsonBody(req.body, max_depth); !s.ok()) return s;
  auto body = nlohmann::json::parse(req.body.begin(), req.body.end(), nullptr, false);
  if (body.is_discarded() || !body.is_object()) return InvalidArgument("request body must be a JSON object");
  return body;
}

void RepositoryControl(InferenceServer* server, bool load, const HttpRequest& req,
                       const std::shared_ptr<HttpReply>& reply) {
  auto body = OptionalObject(req, 4);  // {"parameters": {"config": "..."}}
  if (!body.ok()) return ReplyError(*reply, body.status());
  std::vector<std::string> parameters;
  if (auto p = body->find("parameters"); p != body->end()) {
    if (!p->is_object()) return ReplyError(*reply, InvalidArgument("parameters must be a JSON object"));
    for (const auto& [key, _] : p->items()) parameters.push_back(key);
  }
  ModelControlV2(*server, load, "", req.Param("model"), parameters, [reply](const Status& s) {
    if (!s.ok()) return ReplyError(*reply, s);
    reply->Json(200, "{}");
  });
}

using Reply = std::shared_ptr<HttpReply>;

// Health (also as /healthz and /readyz) and the server's metadata.
void AddServerRoutes(HttpServer* http, InferenceServer* server) {
  using auth::Category;
  auto live = [server](const HttpRequest&, const Reply& reply) {
    reply->Json(server->Live() ? 200 : 503, server->Live() ? "{\"live\":true}" : "{\"live\":false}");
  };
  auto ready = [server](const HttpRequest&, const Reply& reply) {
    bool ok = server->Ready();
    reply->Json(ok ? 200 : 503, ok ? "{\"ready\":true}" : "{\"ready\":false}");
  };
  http->Route({"GET", "/v2/health/live", Category::kHealth}, live);
  http->Route({"GET", "/v2/health/ready", Category::kHealth}, ready);
  http->Route({"GET", "/healthz", Category::kHealth}, live);
  http->Route({"GET", "/readyz", Category::kHealth}, ready);
  http->Route({"GET", "/v2", Category::kMetadata}, [](const HttpRequest&, const Reply& reply) {
    inference::ServerMetadataResponse m;
    ServerMetadataV2(&m);
    reply->Json(200, ServerMetadataJson(m));
  });
}

// The model list, statistics of every model, and each model's routes with and without /versions/{version}.
void AddModelRoutes(HttpServer* http, InferenceServer* server) {
  using auth::Category;
  // Not in the KServe spec, but users try it: the same list as the repository index.
  http->Route({"GET", "/v2/models", Category::kMetadata}, [server](const HttpRequest&, const Reply& reply) {
    inference::RepositoryIndexResponse index;
    RepositoryIndexV2(*server, false, &index);
    reply->Json(200, RepositoryIndexJson(index));
  });
  // Triton's statistics of every model; the one path where a literal outranks {model}.
  http->Route({"GET", "/v2/models/stats", Category::kStatistics}, [server](const HttpRequest&, const Reply& reply) {
    inference::ModelStatisticsResponse stats;
    if (Status s = ModelStatisticsV2(*server, "", "", &stats); !s.ok()) return ReplyError(*reply, s);
    reply->Json(200, ModelStatisticsJson(stats));
  });
  // Each model route with and without /versions/{version}.
  for (const std::string base : {"/v2/models/{model}", "/v2/models/{model}/versions/{version}"}) {
    http->Route({"GET", base, Category::kMetadata}, [server](const HttpRequest& req, const Reply& reply) {
      inference::ModelMetadataResponse metadata;
      Status s = ModelMetadataV2(*server, req.Param("model"), req.Param("version"), &metadata);
      if (!s.ok()) return ReplyError(*reply, s);
      reply->Json(200, MetadataJson(metadata));
    });
    http->Route({"GET", base + "/ready", Category::kHealth}, [server](const HttpRequest& req, const Reply& reply) {
      const std::string model = req.Param("model");
      auto ready = server->ModelReady(model, req.Param("version"));
      if (!ready.ok()) return ReplyError(*reply, ready.status());
      reply->Json(*ready ? 200 : 503,
                  std::string(R"({"name":")") + model + R"(","ready":)" + (*ready ? "true" : "false") + "}");
    });
    http->Route({"GET", base + "/config", Category::kModelConfig},
                [server](const HttpRequest& req, const Reply& reply) {
                  inference::ModelConfigResponse config;
                  Status s = ModelConfigV2(*server, req.Param("model"), req.Param("version"), &config);
                  if (!s.ok()) return ReplyError(*reply, s);
                  reply->Json(200, ModelConfigJson(config));
                });
    http->Route({"GET", base + "/stats", Category::kStatistics}, [server](const HttpRequest& req, const Reply& reply) {
      inference::ModelStatisticsResponse stats;
      Status s = ModelStatisticsV2(*server, req.Param("model"), req.Param("version"), &stats);
      if (!s.ok()) return ReplyError(*reply, s);
      reply->Json(200, ModelStatisticsJson(stats));
    });
    http->Route(
        {"POST", base + "/infer", Category::kInference},
        [server](const HttpRequest& req, const Reply& reply) {
          Infer(server, req, req.Param("model"), req.Param("version"), reply);
        },
        HttpServer::RunOn::kWorker);
  }
}

// Triton's repository extension: the index, and load/unload.
void AddRepositoryRoutes(HttpServer* http, InferenceServer* server) {
  using auth::Category;
  http->Route(
      {"POST", "/v2/repository/index", Category::kRepositoryIndex},
      [server](const HttpRequest& req, const Reply& reply) {
        auto body = OptionalObject(req, 2);  // {"ready": true}
        if (!body.ok()) return ReplyError(*reply, body.status());
        bool ready_only = false;
        if (auto r = body->find("ready"); r != body->end()) {
          if (!r->is_boolean()) return ReplyError(*reply, InvalidArgument("ready must be a boolean"));
          ready_only = r->get<bool>();
        }
        inference::RepositoryIndexResponse index;
        RepositoryIndexV2(*server, ready_only, &index);
        reply->Json(200, RepositoryIndexJson(index));
      },
      HttpServer::RunOn::kWorker);
  // POST /v2/repository/models/{m}/load|unload, body optional: {"parameters": {...}}. The load itself runs on
  // the core's control thread; the reply is sent from there when it finishes.
  for (const bool load : {true, false})
    http->Route(
        {"POST", std::string("/v2/repository/models/{model}/") + (load ? "load" : "unload"), Category::kModelControl},
        [server, load](const HttpRequest& req, const Reply& reply) { RepositoryControl(server, load, req, reply); });
}

}  // namespace

void AddV2Routes(HttpServer* http, InferenceServer* server) {
  http->ErrorFormat("/v2", [](const Status& s) { return ErrorJson(s.message()); });
  AddServerRoutes(http, server);
  AddModelRoutes(http, server);
  AddRepositoryRoutes(http, server);
}

}  // namespace serving::frontends
