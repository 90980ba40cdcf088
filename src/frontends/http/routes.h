// The REST API on top of HttpServer: /v1 (the same JSON as Envoy's transcoding of inference.v1),
// /v2 (KServe v2 REST) and the plain health endpoints.
#pragma once

#include "core/inference_server.h"
#include "frontends/http/http_server.h"

namespace serving::frontends {

// The transport's part of a core request: protocol, trace id from `traceparent`, receive time and the
// connection's cancellation flag.
InferRequest TransportRequest(const HttpRequest& req, const char* protocol);

void AddV1Routes(HttpServer* http, InferenceServer* server);
void AddV2Routes(HttpServer* http, InferenceServer* server);

}  // namespace serving::frontends
