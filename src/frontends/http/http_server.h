// HttpServer: HTTP/1.1 (keep-alive, pipelining, chunked bodies, Expect: 100-continue) with one libevent
// loop per thread, each on its own SO_REUSEPORT listening socket so the kernel spreads connections.
// Requests are parsed by Node's http-parser (Debian's libhttp-parser), which rejects ambiguous framing
// (two Content-Length headers, Content-Length with Transfer-Encoding) and oversized headers; connections
// are our own (http_connection.cc), so we can limit them, give each request a deadline, and see a
// client leave.
//
// A route's handler runs on the loop thread (health, metadata: quick) or on a small worker pool
// (inference: decoding a large body takes a while) and may reply later from any thread: HttpReply posts
// the reply back to the connection's loop, so neither a slow model nor a large body blocks a loop.
// Limits and what each hostile client gets: docs/reliability.md.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "auth/authorizer.h"
#include "core/status.h"
#include "frontends/http/worker_pool.h"
#include "observability/transport_metrics.h"
#include "tls/tls_context.h"

namespace serving::frontends {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query string, not percent-decoded
  HttpHeaders headers;
  std::string_view body;     // owned by the exchange, valid until the reply is sent
  size_t body_readable = 0;  // bytes readable from body.data(): its buffer's capacity (>= body.size())
  // Turns true when the client closes its connection before the reply (see InferRequest::cancelled).
  std::shared_ptr<const std::atomic<bool>> cancelled;
  std::chrono::steady_clock::time_point received;  // when the whole request had arrived
  std::string peer;                                // the client's address, "ip:port"
  std::string tls_identity;                        // the verified client certificate's subject, if any
  // Set by the router: the values of the route's {parameters}, and who the authorizer let in (a token's
  // name; empty when no token was needed).
  std::vector<std::pair<std::string, std::string>> params;
  std::string principal;
  // Case-insensitive; empty when absent.
  std::string Header(std::string_view name) const;
  // The value of route parameter {name}; empty when the route has none.
  std::string Param(std::string_view name) const;
};

struct HttpLoop;      // one event loop thread (http_connection.h)
struct HttpExchange;  // one request and its reply's way back (http_connection.h)

// A pending reply; Send() exactly once, from any thread. Dropped when the client has left meanwhile.
class HttpReply {
 public:
  HttpReply(std::shared_ptr<HttpExchange> exchange, HttpLoop* loop)
      : exchange_(std::move(exchange)), loop_(loop), thread_(std::this_thread::get_id()) {}
  // A reply a handler dropped unsent becomes a 500, so its connection is not left waiting.
  ~HttpReply();
  void Send(int status, std::string body, HttpHeaders headers = {});
  // Convenience: a JSON body.
  // A 429 (a queue is full) says when to come back, on every route.
  void Json(int status, std::string body) {
    if (status == 429)
      return Send(status, std::move(body), {{"Content-Type", "application/json"}, {"Retry-After", "1"}});
    Send(status, std::move(body), {{"Content-Type", "application/json"}});
  }

 private:
  std::shared_ptr<HttpExchange> exchange_;
  HttpLoop* loop_;
  std::thread::id thread_;  // the loop's thread
  std::atomic<bool> sent_{false};
};

// Runs on the connection's event loop (RunOn::kLoop, or kWorker with a small body) or on a worker thread; it
// may keep the reply and send it later from any thread.
using HttpHandler = std::function<void(const HttpRequest&, std::shared_ptr<HttpReply>)>;

// One row of the route table. `pattern` is a path whose segments are literal or a {parameter}; a literal
// segment wins over a parameter at the same place (so /v2/models/stats is not model "stats"). Every route
// says what it does (`category`), which the authorizer decides on before the handler runs.
struct HttpRoute {
  std::string method;   // "GET", "POST"
  std::string pattern;  // "/v2/models/{model}/versions/{version}/infer"
  auth::Category category;
};

class HttpServer {
 public:
  struct Options {
    std::string host = "0.0.0.0";
    int port = 8080;
    int threads = 2;
    size_t max_body_bytes = 64 << 20;
    size_t max_connections = 4096;                 // more are closed as soon as they are accepted
    double request_timeout_s = 60;                 // from accept or the previous reply to a complete request
    int io_timeout_s = 120;                        // reading a request or writing a reply stalls this long: closed
    int worker_threads = 2;                        // for RunOn::kWorker handlers
    size_t inline_body_bytes = 64 << 10;           // smaller bodies decode in microseconds: kWorker runs them inline
    size_t max_queued = 1024;                      // RunOn::kWorker requests waiting beyond this get 503
    TransportMetrics* transport = nullptr;         // optional
    const auth::Authorizer* authorizer = nullptr;  // optional: every request is allowed without one
    // TLS on every connection (optional): a connection without a completed handshake within
    // `handshake_timeout_s` is closed and counted.
    const tls::TlsContext* tls = nullptr;
    double handshake_timeout_s = 10;
  };
  // kWorker: on the worker pool when the body is large (decoding it would hold the loop), else inline.
  enum class RunOn { kLoop, kWorker };

  HttpServer();
  ~HttpServer();

  // Register before Start(). A path no route matches gets 404, a path matched by routes of other methods
  // 405 with Allow; their bodies, and a refusal by the authorizer, in the error format of the longest
  // ErrorFormat prefix that matches the path (google.rpc.Status JSON without one). A format runs on the thread
  // that writes the error (an event loop, a worker, or whichever thread a handler replies from): it must be pure.
  void Route(HttpRoute route, HttpHandler handler, RunOn run_on = RunOn::kLoop);
  void ErrorFormat(std::string prefix, std::function<std::string(const Status&)> format);
  // The route table, in registration order.
  std::vector<HttpRoute> routes() const;
  // Returns the bound port.
  StatusOr<int> Start(const Options& options);
  // Closes the listening sockets: new connections are refused, open ones keep being served, each reply
  // from now on with `Connection: close` so clients take their next request elsewhere.
  void StopAccepting();
  // Runs the handlers still queued, waits until each loop has written the replies handed to it (at most
  // `flush_timeout`), then ends the event loops (open connections are dropped) and joins them.
  void Stop(std::chrono::steady_clock::duration flush_timeout = std::chrono::seconds(1));

  // Called by the connections (loop threads).
  void Dispatch(HttpLoop* loop, const std::shared_ptr<HttpExchange>& exchange);
  bool accepting() const { return accepting_.load(); }
  // The JSON body of an error on `path`, in the shape of the API the path belongs to (ErrorFormat); also
  // for refusals before routing (a body or headers too large, a malformed request).
  std::string ErrorBody(std::string_view path, const Status& status) const;

 private:
  struct RouteEntry {
    HttpRoute route;
    std::vector<std::string> segments;  // of the pattern; "{name}" for a parameter
    std::string operation;              // "METHOD pattern", for the authorizer's log lines
    HttpHandler handler;
    RunOn run_on;
  };
  // The best route for the request's path and method, with its parameters; null after replying 404/405.
  const RouteEntry* Match(HttpRequest& request, HttpReply& reply) const;
  bool Authorized(HttpRequest& request, const RouteEntry& entry, HttpReply& reply) const;
  // `http_status` 0: the status code's (docs/api.md's table).
  void ReplyError(const HttpRequest& request, HttpReply& reply, const Status& status, HttpHeaders headers = {},
                  int http_status = 0) const;

  Options options_;
  std::vector<RouteEntry> routes_;
  std::vector<std::pair<std::string, std::function<std::string(const Status&)>>> error_formats_;
  std::vector<std::unique_ptr<HttpLoop>> loops_;
  std::unique_ptr<WorkerPool> workers_;
  std::atomic<bool> accepting_{true};
  std::atomic<size_t> connections_{0};
  bool stopped_ = false;
};

}  // namespace serving::frontends
