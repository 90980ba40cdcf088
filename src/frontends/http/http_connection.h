// Private to frontends/http: the event loops of HttpServer and the connections they serve. Everything
// here runs on the loop's own thread, except HttpReply::Send (any thread), which posts to the loop.
#pragma once

#include <http_parser.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>

#include "frontends/http/http_server.h"

struct event_base;
struct event;
struct bufferevent;
struct evconnlistener;

namespace serving::frontends {

class HttpConnection;

struct HttpLoop {
  HttpServer* server = nullptr;
  const HttpServer::Options* options = nullptr;
  std::atomic<size_t>* connections = nullptr;  // open connections of all loops together
  event_base* base = nullptr;
  evconnlistener* listener = nullptr;
  event* resume_accept = nullptr;  // re-enables the listener after accept() failed
  std::unordered_map<HttpConnection*, std::shared_ptr<HttpConnection>> open;  // owns the connections
  std::thread thread;
};

// One request: what the handler reads, and the connection its reply goes back to (empty once the client
// has left; the reply is then dropped).
struct HttpExchange {
  HttpRequest request;
  std::string body;  // request.body views it
  std::weak_ptr<HttpConnection> connection;
  std::shared_ptr<std::atomic<bool>> cancelled = std::make_shared<std::atomic<bool>>(false);
};

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  HttpConnection(HttpLoop* loop, int fd, std::string peer);
  ~HttpConnection();

  // Starts reading; the loop's `open` map must already hold the connection.
  void Start();
  // Writes a reply to the request being served and goes on with the next one.
  void Reply(int status, const std::string& body, const HttpHeaders& headers);
  // No request is waiting for its reply and every reply given is written to the socket.
  bool Flushed() const;

  // http-parser's callbacks.
  static int OnUrl(http_parser* p, const char* at, size_t n);
  static int OnHeaderField(http_parser* p, const char* at, size_t n);
  static int OnHeaderValue(http_parser* p, const char* at, size_t n);
  static int OnHeadersComplete(http_parser* p);
  static int OnBody(http_parser* p, const char* at, size_t n);
  static int OnMessageComplete(http_parser* p);

 private:
  static void OnRead(bufferevent* bev, void* self);
  static void OnWritten(bufferevent* bev, void* self);
  static void OnEvent(bufferevent* bev, short what, void* self);
  static void OnDeadline(int fd, short what, void* self);

  // Feeds buffered input to the parser until a request is complete or the input runs out.
  void Parse();
  void ParseBuffered();
  // Answers a request that could not be parsed (or is too large) and closes after the reply.
  void Refuse(int status, const std::string& message);
  // Forgets the connection: the socket closes and pending replies are dropped.
  void Close();
  void ArmDeadline();
  // libevent's I/O timeout on writes, and on reads unless a request is with its handler.
  void SetIoTimeouts(bool reading);
  bool AddHeaderBytes(size_t n);

  HttpLoop* const loop_;
  const std::string peer_;  // "ip:port"
  bufferevent* bev_ = nullptr;
  event* deadline_ = nullptr;
  http_parser parser_;
  std::shared_ptr<HttpExchange> current_;                   // being parsed
  std::shared_ptr<std::atomic<bool>> in_flight_cancelled_;  // of the request with its handler
  bool busy_ = false;         // a request is with its handler; the next waits in the input buffer
  bool close_after_ = false;  // close once the output is written
  bool closing_ = false;
  bool parsing_ = false;      // inside Parse(): a reply given meanwhile must not parse again (recursion)
  bool in_value_ = false;     // the parser last gave a header value (a new field starts a new header)
  bool handshaking_ = false;  // TLS: the handshake has not completed yet
  std::string tls_identity_;  // TLS: the verified client certificate's subject
  size_t header_bytes_ = 0;
};

// Accepting connections on a loop: the connection limit and the pause after accept() errors.
void StartAccepting(HttpLoop* loop, int listen_fd);

}  // namespace serving::frontends
