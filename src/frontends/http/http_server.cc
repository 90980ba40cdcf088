#include "frontends/http/http_server.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <future>

#include "frontends/common/json_print.h"
#include "frontends/http/http_connection.h"
#include "observability/logger.h"

namespace serving::frontends {
namespace {

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

// Runs `fn` on `base`'s loop thread after `delay` (at once by default).
void RunOnLoop(event_base* base, std::function<void()> fn, timeval delay = {0, 0}) {
  auto* heap = new std::function<void()>(std::move(fn));
  event_base_once(
      base, -1, EV_TIMEOUT,
      [](evutil_socket_t, short, void* arg) {
        std::unique_ptr<std::function<void()>> f(static_cast<std::function<void()>*>(arg));
        (*f)();
      },
      heap, &delay);
}

}  // namespace

void HttpReply::Send(int status, std::string body, HttpHeaders headers) {
  if (sent_.exchange(true)) return;
  auto deliver = [exchange = exchange_, status, body = std::move(body), headers = std::move(headers)] {
    if (auto connection = exchange->connection.lock()) connection->Reply(status, body, headers);
  };
  if (std::this_thread::get_id() == thread_) return deliver();
  RunOnLoop(loop_->base, std::move(deliver));
}

HttpReply::~HttpReply() {
  if (!sent_.load())
    Send(500,
         loop_->server->ErrorBody(exchange_->request.path, Internal("the server dropped this request without a reply")),
         {{"Content-Type", "application/json"}});
}

HttpServer::HttpServer() {
  static const int init = [] {
    // libevent's own warnings go through the JSON logger.
    event_set_log_callback([](int severity, const char* msg) {
      logging::Log(severity >= EVENT_LOG_ERR ? logging::Level::kError : logging::Level::kWarn, "libevent",
                   {{"detail", msg}});
    });
    return evthread_use_pthreads();  // makes event_base_once safe from other threads
  }();
  (void)init;
}

HttpServer::~HttpServer() {
  Stop(std::chrono::seconds(0));
  for (auto& l : loops_) {
    l->open.clear();
    if (l->listener) evconnlistener_free(l->listener);
    if (l->resume_accept) event_free(l->resume_accept);
    if (l->base) event_base_free(l->base);
  }
}

namespace {

// The path's segments; empty ones ("//", a trailing "/") are skipped.
std::vector<std::string_view> Segments(std::string_view path) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start < path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (end > start) out.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool IsParameter(std::string_view segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

// Whether `segments` (of a pattern) match `path`; a literal at segment i ranks above a parameter, so of two
// matching patterns the one with the earlier literal wins: `rank` has a bit per segment, set for literals.
bool Matches(const std::vector<std::string>& segments, const std::vector<std::string_view>& path, uint64_t* rank) {
  if (segments.size() != path.size()) return false;
  *rank = 0;
  for (size_t i = 0; i < segments.size(); ++i) {
    const bool literal = !IsParameter(segments[i]);
    if (literal && segments[i] != path[i]) return false;
    if (literal && i < 64) *rank |= uint64_t{1} << (63 - i);
  }
  return true;
}

}  // namespace

void HttpServer::Route(HttpRoute route, HttpHandler handler, RunOn run_on) {
  std::vector<std::string> segments;
  for (auto segment : Segments(route.pattern)) segments.emplace_back(segment);
  std::string operation = route.method + " " + route.pattern;
  routes_.push_back({std::move(route), std::move(segments), std::move(operation), std::move(handler), run_on});
}

void HttpServer::ErrorFormat(std::string prefix, std::function<std::string(const Status&)> format) {
  error_formats_.emplace_back(std::move(prefix), std::move(format));
}

std::vector<HttpRoute> HttpServer::routes() const {
  std::vector<HttpRoute> out;
  for (const auto& entry : routes_) out.push_back(entry.route);
  return out;
}

std::string HttpServer::ErrorBody(std::string_view path, const Status& status) const {
  path = path.substr(0, path.find_first_of("?#"));
  const std::function<std::string(const Status&)>* format = nullptr;
  size_t longest = 0;
  for (const auto& [prefix, fn] : error_formats_) {
    const bool under =
        path.substr(0, prefix.size()) == prefix && (path.size() == prefix.size() || path[prefix.size()] == '/');
    if (under && prefix.size() >= longest) {
      format = &fn;
      longest = prefix.size();
    }
  }
  return format ? (*format)(status) : StatusToJson(status);
}

void HttpServer::ReplyError(const HttpRequest& request, HttpReply& reply, const Status& status, HttpHeaders headers,
                            int http_status) const {
  headers.emplace_back("Content-Type", "application/json");
  const int code = http_status ? http_status : HttpStatusFor(status.code());
  if (code == 429) headers.emplace_back("Retry-After", "1");
  reply.Send(code, ErrorBody(request.path, status), std::move(headers));
}

const HttpServer::RouteEntry* HttpServer::Match(HttpRequest& request, HttpReply& reply) const {
  const auto path = Segments(request.path);
  const RouteEntry* best = nullptr;
  uint64_t best_rank = 0;
  uint64_t best_path_rank = 0;
  bool path_matched = false;
  std::string allow;
  for (const auto& entry : routes_) {
    uint64_t rank = 0;
    if (!Matches(entry.segments, path, &rank)) continue;
    // Of the patterns matching the path, only the most specific ones count (a method of /v2/models/stats
    // is not offered because /v2/models/{model} takes it).
    if (!path_matched || rank > best_path_rank) {
      best_path_rank = rank;
      allow.clear();
    }
    path_matched = true;
    if (rank < best_path_rank) continue;
    if (allow.find(entry.route.method) == std::string::npos) allow += (allow.empty() ? "" : ", ") + entry.route.method;
    if (entry.route.method == request.method && (!best || rank > best_rank)) {
      best = &entry;
      best_rank = rank;
    }
  }
  if (best && best_rank == best_path_rank) {
    for (size_t i = 0; i < best->segments.size(); ++i)
      if (IsParameter(best->segments[i]))
        request.params.emplace_back(best->segments[i].substr(1, best->segments[i].size() - 2), path[i]);
    return best;
  }
  if (!path_matched) {
    ReplyError(request, reply, NotFound("no route for " + request.method + " " + Quote(request.path)));
  } else {
    ReplyError(request, reply,
               Status(StatusCode::kUnimplemented,
                      request.method + " " + Quote(request.path) + ": method not allowed, use " + allow),
               {{"Allow", allow}}, 405);
  }
  return nullptr;
}

bool HttpServer::Authorized(HttpRequest& request, const RouteEntry& entry, HttpReply& reply) const {
  if (!options_.authorizer) return true;
  auth::RequestContext context;
  context.transport = auth::Transport::kHttp;
  context.operation = entry.operation;
  context.category = entry.route.category;
  context.peer = request.peer;
  context.tls_identity = request.tls_identity;
  context.header = [&request](std::string_view name) { return request.Header(name); };
  auth::Decision decision = options_.authorizer->Authorize(context);
  if (decision.ok()) {
    request.principal = std::move(decision.principal);
    return true;
  }
  HttpHeaders headers;
  if (!decision.challenge.empty()) headers.emplace_back("WWW-Authenticate", std::move(decision.challenge));
  ReplyError(request, reply, decision.status, std::move(headers));
  return false;
}

StatusOr<int> HttpServer::Start(const Options& options) {
  options_ = options;
  workers_ = std::make_unique<WorkerPool>(options_.worker_threads, options_.max_queued);
  int port = options.port;
  for (int i = 0; i < std::max(1, options.threads); ++i) {
    SERVING_ASSIGN_OR_RETURN(const int fd, Listen(options.host, port));
    port = BoundPort(fd);
    auto loop = std::make_unique<HttpLoop>();
    loop->server = this;
    loop->options = &options_;
    loop->connections = &connections_;
    loop->base = event_base_new();
    StartAccepting(loop.get(), fd);
    if (!loop->listener) {
      close(fd);
      return Unavailable("cannot accept HTTP connections on port " + std::to_string(port));
    }
    loops_.push_back(std::move(loop));
  }
  for (auto& l : loops_) {
    event_base* base = l->base;
    l->thread = std::thread([base] { event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY); });
  }
  return port;
}

void HttpServer::Dispatch(HttpLoop* loop, const std::shared_ptr<HttpExchange>& exchange) {
  HttpRequest& r = exchange->request;
  auto reply = std::make_shared<HttpReply>(exchange, loop);
  const RouteEntry* best = Match(r, *reply);
  if (!best || !Authorized(r, *best, *reply)) return;
  if (best->run_on == RunOn::kLoop || r.body.size() < options_.inline_body_bytes)
    return best->handler(r, std::move(reply));
  // The exchange (request and body) lives as long as the task and the reply hold it.
  const HttpHandler* handler = &best->handler;
  if (!workers_->Submit([handler, exchange, reply] { (*handler)(exchange->request, reply); })) {
    if (options_.transport) options_.transport->Count(TransportEvent::kHttpOverloaded);
    const char* why =
        accepting() ? "the server is busy decoding other requests; retry" : "the server is shutting down; retry";
    ReplyError(r, *reply, Unavailable(why), {{"Retry-After", "1"}});
  }
}

void HttpServer::StopAccepting() {
  accepting_.store(false);
  for (auto& l : loops_) {
    HttpLoop* loop = l.get();
    RunOnLoop(loop->base, [loop] {
      if (loop->listener) evconnlistener_free(loop->listener);
      loop->listener = nullptr;
    });
  }
}

namespace {

// The flush barrier of Stop(): runs on `loop` until every connection there has written its replies, or
// `deadline` passes (a client that reads nothing cannot hold the shutdown), then sets `done`.
using Clock = std::chrono::steady_clock;

void AwaitFlushed(HttpLoop* loop, Clock::time_point deadline, const std::shared_ptr<std::promise<void>>& done) {
  bool flushed = true;
  for (const auto& [_, connection] : loop->open) flushed = flushed && connection->Flushed();
  if (flushed || Clock::now() >= deadline) return done->set_value();
  RunOnLoop(
      loop->base, [=] { AwaitFlushed(loop, deadline, done); }, timeval{0, 1000});  // again in 1 ms
}

}  // namespace

void HttpServer::Stop(Clock::duration flush_timeout) {
  if (stopped_) return;
  stopped_ = true;
  if (loops_.empty()) return;  // never started (e.g. --list-endpoints): nothing to stop, nothing to log
  // Handlers still queued run first; their replies go to the loops. Work arriving later is refused (503).
  if (workers_) workers_->Shutdown();
  // A barrier posted to each loop after those replies: it returns once the loop has written them.
  std::vector<std::future<void>> flushed;
  const auto deadline = Clock::now() + flush_timeout;
  for (auto& l : loops_) {
    auto done = std::make_shared<std::promise<void>>();
    flushed.push_back(done->get_future());
    HttpLoop* loop = l.get();
    RunOnLoop(loop->base, [loop, deadline, done] { AwaitFlushed(loop, deadline, done); });
  }
  for (auto& f : flushed) f.wait();
  for (auto& l : loops_) {
    HttpLoop* loop = l.get();
    RunOnLoop(loop->base, [loop] {
      loop->open.clear();  // connections are destroyed on their own loop
      event_base_loopexit(loop->base, nullptr);
    });
  }
  for (auto& l : loops_)
    if (l->thread.joinable()) l->thread.join();
  logging::Info("http server stopped");
}

}  // namespace serving::frontends
