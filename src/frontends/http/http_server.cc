#include "frontends/http/http_server.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <event2/util.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "frontends/common/json_print.h"
#include "observability/logger.h"

namespace serving::frontends {

struct HttpServer::Loop {
  HttpServer* server = nullptr;
  event_base* base = nullptr;
  evhttp* http = nullptr;
  evhttp_bound_socket* socket = nullptr;
  std::thread thread;
};

namespace {

struct PendingReply {
  evhttp_request* req;
  int status;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

const char* Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 499: return "Client Closed Request";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status < 400 ? "OK" : "Internal Server Error";
  }
}

// Runs on the connection's loop thread.
void Deliver(PendingReply* p) {
  std::unique_ptr<PendingReply> owned(p);
  evkeyvalq* out = evhttp_request_get_output_headers(p->req);
  for (const auto& [k, v] : p->headers) evhttp_add_header(out, k.c_str(), v.c_str());
  evbuffer* buf = evbuffer_new();
  auto* body = new std::string(std::move(p->body));
  // The buffer references the string instead of copying it; libevent frees it when sent.
  evbuffer_add_reference(buf, body->data(), body->size(),
                         [](const void*, size_t, void* s) { delete static_cast<std::string*>(s); }, body);
  evhttp_send_reply(p->req, p->status, Reason(p->status), buf);
  evbuffer_free(buf);
}

const char* MethodName(evhttp_cmd_type t) {
  switch (t) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return "OTHER";
  }
}

StatusOr<int> Listen(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || !res)
    return InvalidArgument("cannot resolve HTTP host '" + host + "'");
  int fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  bool ok = fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == 0 &&
            bind(fd, res->ai_addr, res->ai_addrlen) == 0 && listen(fd, 1024) == 0;
  freeaddrinfo(res);
  if (!ok) {
    std::string err = std::strerror(errno);
    if (fd >= 0) close(fd);
    return Unavailable("cannot listen for HTTP on " + host + ":" + std::to_string(port) + ": " + err);
  }
  return fd;
}

int BoundPort(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
}

// Runs `fn` on `base`'s loop thread.
void RunOnLoop(event_base* base, std::function<void()> fn) {
  auto* heap = new std::function<void()>(std::move(fn));
  timeval zero{0, 0};
  event_base_once(base, -1, EV_TIMEOUT, [](evutil_socket_t, short, void* arg) {
    std::unique_ptr<std::function<void()>> f(static_cast<std::function<void()>*>(arg));
    (*f)();
  }, heap, &zero);
}

}  // namespace

std::string HttpRequest::Header(const char* name) const {
  const char* v = evhttp_find_header(evhttp_request_get_input_headers(raw), name);
  return v ? v : "";
}

void HttpReply::Send(int status, std::string body, std::vector<std::pair<std::string, std::string>> headers) {
  if (sent_.exchange(true)) return;
  auto* p = new PendingReply{req_, status, std::move(body), std::move(headers)};
  if (std::this_thread::get_id() == loop_) {
    Deliver(p);
    return;
  }
  RunOnLoop(base_, [p] { Deliver(p); });
}

HttpServer::HttpServer() {
  static const int init = evthread_use_pthreads();  // makes event_base_once safe from other threads
  (void)init;
}

HttpServer::~HttpServer() {
  Stop();
  for (auto& l : loops_) {
    if (l->http) evhttp_free(l->http);
    if (l->base) event_base_free(l->base);
  }
}

void HttpServer::Route(std::string prefix, HttpHandler handler) { routes_.emplace_back(std::move(prefix), std::move(handler)); }

StatusOr<int> HttpServer::Start(const Options& options) {
  int port = options.port;
  for (int i = 0; i < std::max(1, options.threads); ++i) {
    auto fd = Listen(options.host, port);
    if (!fd.ok()) return fd.status();
    port = BoundPort(*fd);
    auto loop = std::make_unique<Loop>();
    loop->server = this;
    loop->base = event_base_new();
    loop->http = evhttp_new(loop->base);
    evhttp_set_max_body_size(loop->http, static_cast<ev_ssize_t>(options.max_body_bytes));
    evhttp_set_max_headers_size(loop->http, 64 * 1024);
    evhttp_set_timeout(loop->http, 120);
    evhttp_set_allowed_methods(loop->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                               EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(loop->http, &HttpServer::OnRequest, loop.get());
    loop->socket = evhttp_accept_socket_with_handle(loop->http, *fd);
    if (!loop->socket) return Unavailable("cannot accept HTTP connections on port " + std::to_string(port));
    loops_.push_back(std::move(loop));
  }
  for (auto& l : loops_) {
    event_base* base = l->base;
    l->thread = std::thread([base] { event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY); });
  }
  return port;
}

void HttpServer::OnRequest(evhttp_request* req, void* arg) {
  auto* loop = static_cast<Loop*>(arg);
  loop->server->Dispatch(loop, req);
}

void HttpServer::Dispatch(Loop* loop, evhttp_request* req) {
  HttpRequest r;
  r.raw = req;
  r.method = MethodName(evhttp_request_get_command(req));
  const evhttp_uri* uri = evhttp_request_get_evhttp_uri(req);
  const char* path = uri ? evhttp_uri_get_path(uri) : nullptr;
  r.path = path && *path ? path : "/";
  evbuffer* in = evhttp_request_get_input_buffer(req);
  const size_t len = evbuffer_get_length(in);
  if (len) r.body = std::string_view(reinterpret_cast<const char*>(evbuffer_pullup(in, -1)), len);

  const HttpHandler* best = nullptr;
  size_t best_len = 0;
  for (const auto& [prefix, handler] : routes_) {
    bool match = prefix.back() == '/' ? r.path.compare(0, prefix.size(), prefix) == 0 : r.path == prefix;
    if (match && prefix.size() >= best_len) {
      best = &handler;
      best_len = prefix.size();
    }
  }
  if (!accepting_.load()) evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
  auto reply = std::make_shared<HttpReply>(req, loop->base);
  if (!best) {
    reply->Json(404, StatusToJson(NotFound("no route for " + r.method + " " + r.path)));
    return;
  }
  (*best)(r, std::move(reply));
}

void HttpServer::StopAccepting() {
  accepting_.store(false);
  for (auto& l : loops_) {
    Loop* loop = l.get();
    RunOnLoop(loop->base, [loop] {
      if (loop->socket) evhttp_del_accept_socket(loop->http, loop->socket);
      loop->socket = nullptr;
    });
  }
}

void HttpServer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& l : loops_) event_base_loopexit(l->base, nullptr);
  for (auto& l : loops_)
    if (l->thread.joinable()) l->thread.join();
  logging::Info("http server stopped");
}

}  // namespace serving::frontends
