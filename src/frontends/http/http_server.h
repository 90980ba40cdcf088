// HttpServer: event-driven HTTP/1.1 on libevent's evhttp (keep-alive, pipelining, body limit), with
// one event loop per thread, each on its own SO_REUSEPORT listening socket so the kernel spreads
// connections. Handlers run on the loop thread and may reply later from any thread (HttpReply posts
// the reply back to the connection's loop), so a slow model never blocks a loop.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/status.h"

struct evhttp_request;
struct event_base;
struct evhttp;
struct evhttp_bound_socket;

namespace serving::frontends {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query string, not percent-decoded
  std::string_view body;
  evhttp_request* raw = nullptr;
  // Empty when absent.
  std::string Header(const char* name) const;
};

// A pending reply; Send() exactly once, from any thread.
class HttpReply {
 public:
  HttpReply(evhttp_request* req, event_base* base) : req_(req), base_(base), loop_(std::this_thread::get_id()) {}
  void Send(int status, std::string body, std::vector<std::pair<std::string, std::string>> headers = {});
  // Convenience: a JSON body.
  void Json(int status, std::string body) { Send(status, std::move(body), {{"Content-Type", "application/json"}}); }

 private:
  evhttp_request* req_;
  event_base* base_;
  std::thread::id loop_;
  std::atomic<bool> sent_{false};
};

using HttpHandler = std::function<void(const HttpRequest&, std::shared_ptr<HttpReply>)>;

class HttpServer {
 public:
  struct Options {
    std::string host = "0.0.0.0";
    int port = 8080;
    int threads = 2;
    size_t max_body_bytes = 64 << 20;
  };

  HttpServer();
  ~HttpServer();

  // `prefix` ending in '/' matches every path under it; otherwise the path must be equal. The longest
  // match wins. Register before Start().
  void Route(std::string prefix, HttpHandler handler);
  // Returns the bound port.
  StatusOr<int> Start(const Options& options);
  // Closes the listening sockets: new connections are refused, open ones keep being served, each reply
  // from now on with `Connection: close` so clients take their next request elsewhere.
  void StopAccepting();
  // Ends the event loops (open connections are dropped) and joins the threads.
  void Stop();

 private:
  struct Loop;
  static void OnRequest(evhttp_request* req, void* arg);
  void Dispatch(Loop* loop, evhttp_request* req);

  std::vector<std::pair<std::string, HttpHandler>> routes_;
  std::vector<std::unique_ptr<Loop>> loops_;
  std::atomic<bool> accepting_{true};
  bool stopped_ = false;
};

}  // namespace serving::frontends
