// One HTTP/1.1 connection: reads with a bufferevent, parses with http-parser, serves one request at a
// time (pipelined ones wait in the input buffer, so replies keep their order), and enforces the limits.
//
// We wrote this connection layer ourselves because libevent 2.1's evhttp has no connection limit, no
// deadline for a complete request and no close hook for server connections, and accepted a second
// Content-Length. The parsing itself is http-parser's.
#include "frontends/http/http_connection.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cmath>
#include <cstddef>
#include <mutex>

#include "frontends/common/json_print.h"
#include "observability/logger.h"

namespace serving::frontends {
namespace {

constexpr size_t kMaxHeaderBytes = size_t{64} * 1024;  // request line and headers together
constexpr size_t kMaxHeaders = 100;
constexpr double kLingerSeconds = 2;  // after refusing a request, how long unread input is drained

timeval Timeval(double seconds) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(seconds);
  tv.tv_usec = static_cast<suseconds_t>((seconds - std::floor(seconds)) * 1e6);
  return tv;
}

const char* Reason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status < 400 ? "OK" : "Internal Server Error";
  }
}

void Count(TransportEvent event, const HttpLoop* loop) {
  if (loop->options->transport) loop->options->transport->Count(event);
}

logging::RateLimitedWarning refused_warning("http connection refused: over --http-max-connections");
logging::RateLimitedWarning timeout_warning("http connection closed: it sent no complete request in time");
logging::RateLimitedWarning malformed_warning("http request refused: malformed or too large");
logging::RateLimitedWarning accept_warning("http accept failed; accepting paused for 100 ms");
logging::RateLimitedWarning tls_warning("https connection closed: no TLS session");

const http_parser_settings* Settings();

}  // namespace

std::string HttpRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), k.size()) == 0) return v;
  return "";
}

std::string HttpRequest::Param(std::string_view name) const {
  for (const auto& [k, v] : params)
    if (k == name) return v;
  return "";
}

HttpConnection::HttpConnection(HttpLoop* loop, int fd, std::string peer) : loop_(loop), peer_(std::move(peer)) {
  if (loop->options->tls) {
    // The handshake runs inside the bufferevent; BEV_EVENT_CONNECTED says it completed. The deadline bounds it.
    SSL* ssl = SSL_new(loop->options->tls->Current().get());
    bev_ = ssl ? bufferevent_openssl_socket_new(loop->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE)
               : bufferevent_socket_new(loop->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (ssl) bufferevent_openssl_set_allow_dirty_shutdown(bev_, 1);
    handshaking_ = ssl != nullptr;
    if (!ssl) closing_ = true;  // no TLS state to be had: the connection is dropped at once in Start()
  } else {
    bev_ = bufferevent_socket_new(loop->base, fd, BEV_OPT_CLOSE_ON_FREE);
  }
  bufferevent_setcb(bev_, &OnRead, &OnWritten, &OnEvent, this);
  deadline_ = evtimer_new(loop->base, &OnDeadline, this);
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
  current_ = std::make_shared<HttpExchange>();
  current_->request.peer = peer_;
  loop->connections->fetch_add(1);
  if (loop->options->transport) loop->options->transport->AddHttpConnections(1);
}

HttpConnection::~HttpConnection() {
  // Gone before its reply (the client closed or broke the connection, or a timeout closed it): a request
  // still waiting for the model is not run, and its reply, if one comes, is dropped (nginx's 499).
  if (busy_ && in_flight_cancelled_) in_flight_cancelled_->store(true);
  event_free(deadline_);
  bufferevent_free(bev_);
  loop_->connections->fetch_sub(1);
  if (loop_->options->transport) loop_->options->transport->AddHttpConnections(-1);
}

void HttpConnection::Start() {
  if (closing_) return Close();  // TLS could not be set up for it
  SetIoTimeouts(/*reading=*/true);
  bufferevent_enable(bev_, EV_READ | EV_WRITE);
  ArmDeadline();
}

void HttpConnection::SetIoTimeouts(bool reading) {
  const timeval io = Timeval(loop_->options->io_timeout_s);
  bufferevent_set_timeouts(bev_, reading ? &io : nullptr, &io);
}

void HttpConnection::ArmDeadline() {
  const double request = loop_->options->request_timeout_s;
  const timeval tv = Timeval(closing_       ? kLingerSeconds
                             : handshaking_ ? std::min(request, loop_->options->handshake_timeout_s)
                                            : request);
  evtimer_add(deadline_, &tv);
}

void HttpConnection::Close() {
  closing_ = true;
  loop_->open.erase(this);  // may destroy *this: callers hold a reference or return at once
}

bool HttpConnection::AddHeaderBytes(size_t n) {
  header_bytes_ += n;
  return header_bytes_ <= kMaxHeaderBytes;
}

int HttpConnection::OnUrl(http_parser* p, const char* at, size_t n) {
  auto* c = static_cast<HttpConnection*>(p->data);
  if (!c->AddHeaderBytes(n)) return -1;
  c->current_->request.path.append(at, n);
  return 0;
}

int HttpConnection::OnHeaderField(http_parser* p, const char* at, size_t n) {
  auto* c = static_cast<HttpConnection*>(p->data);
  auto& headers = c->current_->request.headers;
  if (!c->AddHeaderBytes(n)) return -1;
  if (headers.empty() || c->in_value_) {
    if (headers.size() == kMaxHeaders) return -1;
    headers.emplace_back();
  }
  c->in_value_ = false;
  headers.back().first.append(at, n);
  return 0;
}

int HttpConnection::OnHeaderValue(http_parser* p, const char* at, size_t n) {
  auto* c = static_cast<HttpConnection*>(p->data);
  if (!c->AddHeaderBytes(n)) return -1;
  c->in_value_ = true;
  c->current_->request.headers.back().second.append(at, n);
  return 0;
}

int HttpConnection::OnHeadersComplete(http_parser* p) {
  auto* c = static_cast<HttpConnection*>(p->data);
  HttpRequest& r = c->current_->request;
  r.method = http_method_str(static_cast<http_method>(p->method));
  if (auto cut = r.path.find_first_of("?#"); cut != std::string::npos) r.path.resize(cut);
  if (r.path.empty()) r.path = "/";
  const size_t max = c->loop_->options->max_body_bytes;
  if (p->content_length != ULLONG_MAX) {
    if (p->content_length > max) return -1;             // OnBody would refuse it anyway; refuse before reading it
    c->current_->body.reserve(p->content_length + 64);  // room for a JSON parser's read-ahead (simdjson)
  }
  if (strcasecmp(r.Header("Expect").c_str(), "100-continue") == 0) {
    static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
    bufferevent_write(c->bev_, kContinue, sizeof(kContinue) - 1);
  }
  return 0;
}

int HttpConnection::OnBody(http_parser* p, const char* at, size_t n) {
  auto* c = static_cast<HttpConnection*>(p->data);
  if (c->current_->body.size() + n > c->loop_->options->max_body_bytes) return -1;
  c->current_->body.append(at, n);
  return 0;
}

int HttpConnection::OnMessageComplete(http_parser* p) {
  // The request's clock starts here: what follows (parsing its body included) is the server's time.
  static_cast<HttpConnection*>(p->data)->current_->request.received = std::chrono::steady_clock::now();
  http_parser_pause(p, 1);  // one request at a time: Parse() dispatches it
  return 0;
}

void HttpConnection::OnRead(bufferevent*, void* self) {
  auto keep = static_cast<HttpConnection*>(self)->shared_from_this();
  if (keep->closing_) {  // lingering after a refusal: discard what the client still sends
    evbuffer_drain(bufferevent_get_input(keep->bev_), evbuffer_get_length(bufferevent_get_input(keep->bev_)));
    return;
  }
  keep->Parse();
}

void HttpConnection::Parse() {
  if (parsing_) return;
  parsing_ = true;
  ParseBuffered();
  parsing_ = false;
}

void HttpConnection::ParseBuffered() {
  evbuffer* in = bufferevent_get_input(bev_);
  while (!busy_ && !closing_ && !close_after_ && evbuffer_get_length(in) > 0) {
    evbuffer_iovec chunk;
    if (evbuffer_peek(in, -1, nullptr, &chunk, 1) < 1) break;
    const size_t used =
        http_parser_execute(&parser_, Settings(), static_cast<const char*>(chunk.iov_base), chunk.iov_len);
    evbuffer_drain(in, used);
    const auto err = HTTP_PARSER_ERRNO(&parser_);
    if (err == HPE_OK && parser_.upgrade) return Refuse(400, "protocol upgrades are not supported");
    if (err == HPE_OK) continue;
    if (err != HPE_PAUSED) {
      const bool too_large_body = err == HPE_CB_body || err == HPE_CB_headers_complete;
      const bool too_large_head =
          err == HPE_HEADER_OVERFLOW || err == HPE_CB_url || err == HPE_CB_header_field || err == HPE_CB_header_value;
      if (too_large_body)
        return Refuse(413, "request body is larger than the server's limit of " +
                               std::to_string(loop_->options->max_body_bytes) + " bytes (--max-request-bytes)");
      if (too_large_head)
        return Refuse(431, "request line and headers are larger than " + std::to_string(kMaxHeaderBytes) +
                               " bytes or more than " + std::to_string(kMaxHeaders) + " headers");
      return Refuse(400, std::string("malformed HTTP request: ") + http_errno_description(err));
    }
    // A complete request: hand it over and keep the rest of the input for after its reply.
    http_parser_pause(&parser_, 0);
    busy_ = true;
    evtimer_del(deadline_);
    SetIoTimeouts(/*reading=*/false);  // waiting for the model is not a stalled read
    close_after_ = close_after_ || !http_should_keep_alive(&parser_);
    auto exchange = std::move(current_);
    current_ = std::make_shared<HttpExchange>();
    current_->request.peer = peer_;
    current_->request.tls_identity = tls_identity_;
    header_bytes_ = 0;
    in_value_ = false;
    exchange->request.body = exchange->body;
    exchange->request.body_readable = exchange->body.capacity();
    exchange->request.cancelled = exchange->cancelled;
    in_flight_cancelled_ = exchange->cancelled;
    exchange->connection = weak_from_this();
    loop_->server->Dispatch(loop_, exchange);
  }
}

void HttpConnection::Reply(int status, const std::string& body, const HttpHeaders& headers) {
  if (closing_) return;
  const bool close = close_after_ || !loop_->server->accepting();
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + Reason(status) + "\r\n";
  for (const auto& [k, v] : headers) head += k + ": " + v + "\r\n";
  head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  if (close) head += "Connection: close\r\n";
  head += "\r\n";
  evbuffer* out = bufferevent_get_output(bev_);
  evbuffer_add(out, head.data(), head.size());
  if (!(busy_ && parser_.method == HTTP_HEAD)) evbuffer_add(out, body.data(), body.size());
  busy_ = false;
  if (close) {
    close_after_ = true;
    bufferevent_disable(bev_, EV_READ);
    return;  // OnWritten closes once the reply is out
  }
  SetIoTimeouts(/*reading=*/true);
  ArmDeadline();
  auto keep = shared_from_this();
  Parse();  // pipelined requests already buffered
}

void HttpConnection::Refuse(int status, const std::string& message) {
  Count(TransportEvent::kHttpMalformed, loop_);
  malformed_warning.Hit(message);
  busy_ = false;
  close_after_ = true;  // the rest of the input cannot be trusted to be the next request
  // In the shape of the API the request's path belongs to, as far as the path was read.
  const Status refusal = status == 413 || status == 431 ? ResourceExhausted(message) : InvalidArgument(message);
  Reply(status, loop_->server->ErrorBody(current_->request.path, refusal), {{"Content-Type", "application/json"}});
}

bool HttpConnection::Flushed() const { return !busy_ && evbuffer_get_length(bufferevent_get_output(bev_)) == 0; }

void HttpConnection::OnWritten(bufferevent*, void* self) {
  auto* c = static_cast<HttpConnection*>(self);
  if (!c->close_after_ || c->closing_) return;
  // The last reply is out. Close our side, but read (and discard) what the client still sends for a
  // moment: closing with unread input would reset the connection and could lose the reply.
  c->closing_ = true;
  if (SSL* ssl = bufferevent_openssl_get_ssl(c->bev_)) SSL_shutdown(ssl);  // TLS close_notify first
  shutdown(bufferevent_getfd(c->bev_), SHUT_WR);
  bufferevent_enable(c->bev_, EV_READ);
  c->ArmDeadline();
}

void HttpConnection::OnEvent(bufferevent*, short what, void* self) {
  auto keep = static_cast<HttpConnection*>(self)->shared_from_this();
  if (what & BEV_EVENT_CONNECTED) {  // the TLS handshake completed: the request clock starts now
    keep->handshaking_ = false;
    keep->tls_identity_ = tls::PeerIdentity(bufferevent_openssl_get_ssl(keep->bev_));
    keep->current_->request.tls_identity = keep->tls_identity_;
    keep->ArmDeadline();
    return;
  }
  if (keep->handshaking_) {
    Count(TransportEvent::kHttpTlsFailed, keep->loop_);
    tls_warning.Hit(tls::OpenSslErrors("the connection closed during the handshake"));
    return keep->Close();
  }
  if (what & BEV_EVENT_TIMEOUT) {
    Count(TransportEvent::kHttpTimedOut, keep->loop_);
    timeout_warning.Hit("no byte read or written within --http-io-timeout-s");
  }
  keep->Close();
}

void HttpConnection::OnDeadline(int, short, void* self) {
  auto keep = static_cast<HttpConnection*>(self)->shared_from_this();
  if (keep->handshaking_) {
    Count(TransportEvent::kHttpTlsTimedOut, keep->loop_);
    tls_warning.Hit("no completed TLS handshake within --tls-handshake-timeout-s");
  } else if (!keep->closing_) {
    Count(TransportEvent::kHttpTimedOut, keep->loop_);
    timeout_warning.Hit("no complete request within --http-request-timeout-s");
  }
  keep->Close();
}

namespace {

const http_parser_settings* Settings() {
  static const http_parser_settings settings = [] {
    http_parser_settings s{};
    s.on_url = &HttpConnection::OnUrl;
    s.on_header_field = &HttpConnection::OnHeaderField;
    s.on_header_value = &HttpConnection::OnHeaderValue;
    s.on_headers_complete = &HttpConnection::OnHeadersComplete;
    s.on_body = &HttpConnection::OnBody;
    s.on_message_complete = &HttpConnection::OnMessageComplete;
    return s;
  }();
  return &settings;
}

void OnAcceptResume(evutil_socket_t, short, void* arg) {
  auto* loop = static_cast<HttpLoop*>(arg);
  if (loop->listener) evconnlistener_enable(loop->listener);
}

void OnAcceptError(evconnlistener* listener, void* arg) {
  auto* loop = static_cast<HttpLoop*>(arg);
  Count(TransportEvent::kHttpAcceptError, loop);
  accept_warning.Hit(evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
  // accept() would fail again at once (e.g. out of descriptors): wait a little instead of spinning.
  evconnlistener_disable(listener);
  if (!loop->resume_accept) loop->resume_accept = evtimer_new(loop->base, &OnAcceptResume, loop);
  const timeval tv = Timeval(0.1);
  evtimer_add(loop->resume_accept, &tv);
}

// "ip:port" ("[ip]:port" for IPv6) of an accepted connection, for logs and the authorizer.
std::string PeerAddress(const sockaddr* addr) {
  char host[INET6_ADDRSTRLEN] = "";
  if (addr->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    return std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (addr->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  return "";
}

void OnAccept(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int, void* arg) {
  auto* loop = static_cast<HttpLoop*>(arg);
  if (loop->connections->load() >= loop->options->max_connections) {
    close(fd);
    Count(TransportEvent::kHttpRefused, loop);
    refused_warning.Hit();
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  auto connection = std::make_shared<HttpConnection>(loop, fd, PeerAddress(addr));
  loop->open[connection.get()] = connection;
  connection->Start();
}

}  // namespace

void StartAccepting(HttpLoop* loop, int listen_fd) {
  loop->listener = evconnlistener_new(loop->base, &OnAccept, loop, LEV_OPT_CLOSE_ON_FREE, -1, listen_fd);
  evconnlistener_set_error_cb(loop->listener, &OnAcceptError);
}

}  // namespace serving::frontends
