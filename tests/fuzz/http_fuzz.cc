// libFuzzer target: the HTTP connection as a whole. The fuzz input is what a client writes on one connection;
// it goes over loopback to a real HttpServer (http-parser, the router, the route table of /v1 and /v2) over a
// real core with a stand-in backend (core/testing/fake_backend.h: model "m", input X FP32 [-1, 2]), and the
// client reads whatever comes back until the server closes. Pipelined requests, chunked bodies, the binary
// extension and every refusal path run in the server's own threads; a crash, leak or hang in any of them fails
// the target, and every reply must be an HTTP/1.1 status line.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include <google/protobuf/stubs/logging.h>

#include "core/inference_server.h"
#include "core/model_repository.h"
#include "core/testing/fake_backend.h"
#include "core/testing/memory_source.h"
#include "frontends/http/http_server.h"
#include "frontends/http/routes.h"
#include "observability/logger.h"

namespace {

using namespace serving;

struct Platform {
  BackendRegistry backends;
  std::unique_ptr<ModelRepository> repository;
  std::unique_ptr<InferenceServer> server;
  frontends::HttpServer http;
  int port = 0;
};

// One server for the whole run (made once, never torn down: libFuzzer exits without destructors).
int Port() {
  static Platform* platform = [] {
    logging::Configure(logging::Level::kError, logging::Format::kJson);
    signal(SIGPIPE, SIG_IGN);  // as the server's main does: a client gone mid-reply is an error, not a signal
    // protobuf complains on stderr (past the JSON logger) about what it cannot serialise, such as a message that
    // is not UTF-8: a finding, not noise.
    google::protobuf::SetLogHandler([](google::protobuf::LogLevel level, const char*, int, const std::string& m) {
      if (level < google::protobuf::LOGLEVEL_ERROR) return;
      std::fprintf(stderr, "http_fuzz: protobuf: %s\n", m.c_str());
      std::abort();
    });
    auto* p = new Platform();
    p->backends.Register("fake", std::make_unique<testing::FakeBackend>());
    auto files = std::make_shared<testing::MemorySource::Files>();
    files->models["m"].files["config.pbtxt"] = "backend: \"fake\"\nmax_batch_size: 8\n";
    files->models["m"].versions[1]["model.txt"] = "ok";
    p->repository = std::make_unique<ModelRepository>(std::make_unique<testing::MemorySource>(files),
                                                      ModelRepository::Options{std::chrono::milliseconds(0)},
                                                      &p->backends, nullptr, nullptr);
    p->repository->Poll();
    p->server = std::make_unique<InferenceServer>(InferenceServer::Options{}, p->repository.get(), nullptr);
    frontends::AddV1Routes(&p->http, p->server.get());
    frontends::AddV2Routes(&p->http, p->server.get());
    frontends::HttpServer::Options options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.threads = 1;
    options.worker_threads = 1;
    options.max_body_bytes = 1 << 20;
    options.request_timeout_s = 5;
    options.io_timeout_s = 5;
    auto port = p->http.Start(options);
    if (!port.ok()) std::abort();
    p->port = *port;
    return p;
  }();
  return platform->port;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(Port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // Out of local ports for a moment (thousands of connections a second): wait. Interrupted by libFuzzer's
  // timer signal: the connection goes on, wait for it. Refused: the server is gone.
  for (int tries = 0; connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0; ++tries) {
    if (errno == EINTR) {
      pollfd p{fd, POLLOUT, 0};
      int error = 0;
      socklen_t len = sizeof(error);
      while (poll(&p, 1, 5000) < 0 && errno == EINTR) {
      }
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) == 0 && error == 0) break;
      errno = error;
    }
    if (errno != EADDRNOTAVAIL || tries == 1000) {
      std::fprintf(stderr, "http_fuzz: connect: %s\n", std::strerror(errno));
      std::abort();
    }
    usleep(1000);
  }
  timeval tv{8, 0};  // under libFuzzer's -timeout: a server that never answers nor closes is reported as a hang
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  for (size_t sent = 0; sent < size;) {
    const ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server closed early (a refusal): what it said is still read below
    sent += static_cast<size_t>(n);
  }
  shutdown(fd, SHUT_WR);  // the client has said everything: the server answers and closes
  std::string reply;
  char buf[1 << 14];
  for (ssize_t n; (n = recv(fd, buf, sizeof(buf), 0)) > 0 || (n < 0 && errno == EINTR);)
    if (n > 0) reply.append(buf, static_cast<size_t>(n));
  // Closed at once (RST) once the server has closed: no TIME_WAIT left behind per input.
  const linger abort_close{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close));
  close(fd);
  if (!reply.empty() && reply.compare(0, 9, "HTTP/1.1 ") != 0) std::abort();  // every reply starts with a status
  if (std::getenv("HTTP_FUZZ_SHOW")) std::fprintf(stderr, "%s\n---\n", reply.c_str());  // to check a seed
  return 0;
}
