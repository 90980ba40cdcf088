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

void WrongMethod(HttpReply& reply, const HttpRequest& req, const char* allow) {
  reply.MethodNotAllowed(allow, ErrorJson(req.method + " " + Quote(req.path) + ": method not allowed, use " + allow));
}

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (end > start) parts.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return parts;
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
    auto framing = BodyFraming(req);
    if (!framing.ok()) return framing.status();
    auto parsed = ParseV2InferBody(req.body, *framing, req.body_readable);
    if (!parsed.ok()) return parsed.status();
    call->in = std::move(parsed).value();
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

void Models(InferenceServer* server, const HttpRequest& req, const std::shared_ptr<HttpReply>& reply) {
  // /v2/models/{m}[/versions/{v}][/ready|/infer|/config|/stats], and /v2/models/stats (every model)
  auto parts = Split(req.path);
  if (parts.size() < 3) return ReplyError(*reply, NotFound("no route for " + req.method + " " + Quote(req.path)));
  const std::string& model = parts[2];
  std::string version;
  size_t next = 3;
  if (parts.size() >= 5 && parts[3] == "versions") {
    version = parts[4];
    next = 5;
  }
  const std::string action = next < parts.size() ? parts[next] : "";
  if (next + (action.empty() ? 0 : 1) != parts.size() ||
      (action != "" && action != "ready" && action != "infer" && action != "config" && action != "stats"))
    return ReplyError(*reply, NotFound("no route for " + req.method + " " + Quote(req.path)));

  if (action == "infer") {
    if (req.method != "POST") return WrongMethod(*reply, req, "POST");
    return Infer(server, req, model, version, reply);
  }
  if (req.method != "GET") return WrongMethod(*reply, req, "GET");
  if (action == "ready") {
    auto ready = server->ModelReady(model, version);
    if (!ready.ok()) return ReplyError(*reply, ready.status());
    return reply->Json(*ready ? 200 : 503,
                       std::string(R"({"name":")") + model + R"(","ready":)" + (*ready ? "true" : "false") + "}");
  }
  if (action == "stats" || (model == "stats" && parts.size() == 3)) {
    inference::ModelStatisticsResponse stats;
    const std::string name = action == "stats" ? model : "";
    if (Status s = ModelStatisticsV2(*server, name, version, &stats); !s.ok()) return ReplyError(*reply, s);
    return reply->Json(200, ModelStatisticsJson(stats));
  }
  if (action == "config") {
    inference::ModelConfigResponse config;
    if (Status s = ModelConfigV2(*server, model, version, &config); !s.ok()) return ReplyError(*reply, s);
    return reply->Json(200, ModelConfigJson(config));
  }
  inference::ModelMetadataResponse metadata;
  Status s = ModelMetadataV2(*server, model, version, &metadata);
  if (!s.ok()) return ReplyError(*reply, s);
  reply->Json(200, MetadataJson(metadata));
}

}  // namespace

void AddV2Routes(HttpServer* http, InferenceServer* server) {
  auto live = [server](const HttpRequest&, const std::shared_ptr<HttpReply>& reply) {
    reply->Json(server->Live() ? 200 : 503, server->Live() ? "{\"live\":true}" : "{\"live\":false}");
  };
  auto ready = [server](const HttpRequest&, const std::shared_ptr<HttpReply>& reply) {
    bool ok = server->Ready();
    reply->Json(ok ? 200 : 503, ok ? "{\"ready\":true}" : "{\"ready\":false}");
  };
  http->Route("/v2/health/live", live);
  http->Route("/v2/health/ready", ready);
  http->Route("/healthz", live);
  http->Route("/readyz", ready);
  http->Route("/v2", [](const HttpRequest& req, const std::shared_ptr<HttpReply>& reply) {
    if (req.method != "GET") return WrongMethod(*reply, req, "GET");
    inference::ServerMetadataResponse m;
    ServerMetadataV2(&m);
    reply->Json(200, ServerMetadataJson(m));
  });
  http->Route(
      "/v2/models/",
      [server](const HttpRequest& req, const std::shared_ptr<HttpReply>& reply) { Models(server, req, reply); },
      HttpServer::RunOn::kWorker);
  // Not in the KServe spec, but users try it: the same list as the repository index.
  http->Route("/v2/models", [server](const HttpRequest& req, const std::shared_ptr<HttpReply>& reply) {
    if (req.method != "GET") return WrongMethod(*reply, req, "GET");
    inference::RepositoryIndexResponse index;
    RepositoryIndexV2(*server, false, &index);
    reply->Json(200, RepositoryIndexJson(index));
  });
  http->Route(
      "/v2/repository/index",
      [server](const HttpRequest& req, const std::shared_ptr<HttpReply>& reply) {
        if (req.method != "POST") return WrongMethod(*reply, req, "POST");
        bool ready_only = false;
        if (!req.body.empty()) {
          if (Status s = CheckJsonBody(req.body, 2); !s.ok()) return ReplyError(*reply, s);  // {"ready": true}
          auto body = nlohmann::json::parse(req.body.begin(), req.body.end(), nullptr, false);
          if (body.is_discarded() || !body.is_object())
            return ReplyError(*reply, InvalidArgument("request body must be a JSON object"));
          if (auto r = body.find("ready"); r != body.end()) {
            if (!r->is_boolean()) return ReplyError(*reply, InvalidArgument("ready must be a boolean"));
            ready_only = r->get<bool>();
          }
        }
        inference::RepositoryIndexResponse index;
        RepositoryIndexV2(*server, ready_only, &index);
        reply->Json(200, RepositoryIndexJson(index));
      },
      HttpServer::RunOn::kWorker);
  // POST /v2/repository/models/{m}/load|unload, body optional: {"parameters": {...}}. Loading reads files:
  // on a worker thread.
  http->Route(
      "/v2/repository/models/",
      [server](const HttpRequest& req, const std::shared_ptr<HttpReply>& reply) {
        auto parts = Split(req.path);
        if (parts.size() != 5 || (parts[4] != "load" && parts[4] != "unload"))
          return ReplyError(*reply, NotFound("no route for " + req.method + " " + Quote(req.path)));
        if (req.method != "POST") return WrongMethod(*reply, req, "POST");
        std::vector<std::string> parameters;
        if (!req.body.empty()) {
          if (Status s = CheckJsonBody(req.body, 4); !s.ok()) return ReplyError(*reply, s);
          auto body = nlohmann::json::parse(req.body.begin(), req.body.end(), nullptr, false);
          if (body.is_discarded() || !body.is_object())
            return ReplyError(*reply, InvalidArgument("request body must be a JSON object"));
          if (auto p = body.find("parameters"); p != body.end()) {
            if (!p->is_object()) return ReplyError(*reply, InvalidArgument("parameters must be a JSON object"));
            for (const auto& [key, _] : p->items()) parameters.push_back(key);
          }
        }
        Status s = ModelControlV2(*server, parts[4] == "load", "", parts[3], parameters);
        if (!s.ok()) return ReplyError(*reply, s);
        reply->Json(200, "{}");
      },
      HttpServer::RunOn::kWorker);
  http->Route("/v2/", [](const HttpRequest& req, const std::shared_ptr<HttpReply>& reply) {
    ReplyError(*reply, NotFound("no route for " + req.method + " " + Quote(req.path)));
  });
}

}  // namespace serving::frontends
