#include "frontends/http/routes.h"

namespace serving::frontends {

InferRequest TransportRequest(const HttpRequest& req, const char* protocol) {
  InferRequest request;
  request.protocol = protocol;
  request.trace = ParseTraceContext(req.Header("traceparent"), req.Header("tracestate"));
  request.received = req.received;
  request.cancelled = req.cancelled;
  request.principal = req.principal;
  request.tls_identity = req.tls_identity;
  return request;
}

}  // namespace serving::frontends
