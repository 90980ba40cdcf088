#include "server/server.h"

#include <google/protobuf/stubs/logging.h>
#include <grpc/support/log.h>
#include <malloc.h>
#include <netdb.h>
#include <prometheus/exposer.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <csignal>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "backends/onnxruntime/onnxruntime_backend.h"
#include "backends/trees/trees_backend.h"
#include "core/inference_server.h"
#include "core/model_repository.h"
#include "frontends/grpc/grpc_server.h"
#include "frontends/http/routes.h"
#include "observability/logger.h"
#include "observability/process_metrics.h"

namespace serving {
namespace {

std::string HostPort(const std::string& host, int port) {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

int Fail(const std::string& what, const Status& status) {
  logging::Error(what, {{"status", StatusCodeName(status.code())}, {"reason", status.message()}});
  return 1;
}

// gRPC and protobuf print their own plain-text lines on stderr, which would break the one-JSON-object-
// per-line log stream: route them through the logger instead.
void RouteLibraryLogs() {
  gpr_set_log_function([](gpr_log_func_args* args) {
    const logging::Level level = args->severity == GPR_LOG_SEVERITY_ERROR  ? logging::Level::kError
                                 : args->severity == GPR_LOG_SEVERITY_INFO ? logging::Level::kInfo
                                                                           : logging::Level::kDebug;
    logging::Log(level, "grpc", {{"detail", args->message}, {"file", args->file}, {"line", args->line}});
  });
  google::protobuf::SetLogHandler(
      [](google::protobuf::LogLevel level, const char* file, int line, const std::string& message) {
        logging::Log(level >= google::protobuf::LOGLEVEL_ERROR ? logging::Level::kError : logging::Level::kWarn,
                     "protobuf", {{"detail", message}, {"file", file}, {"line", line}});
      });
}

// Each connection takes a descriptor: raise the soft limit to the hard one so the connection limits, not
// the default 1024 descriptors, decide how many clients are served.
void RaiseOpenFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  const rlim_t before = limit.rlim_cur;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) limit.rlim_cur = before;
  }
  logging::Info("open file limit",
                {{"before", static_cast<int64_t>(before)}, {"now", static_cast<int64_t>(limit.rlim_cur)}});
}

// Process-wide settings, before any thread starts. Termination signals are taken synchronously by the
// main thread (sigwait): they are blocked here so every thread inherits the mask.
sigset_t PrepareProcess() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  RouteLibraryLogs();
  RaiseOpenFileLimit();
  // Buffers of 1 MiB and more (large request bodies, their parse state) are mapped for themselves and
  // go back to the system when freed; glibc would otherwise raise this threshold after the first large
  // free and keep such memory in its heap after the request.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  return signals;
}

// The /metrics endpoint (prometheus-cpp's civetweb): null when --metrics-port is 0.
StatusOr<std::unique_ptr<prometheus::Exposer>> StartMetrics(const ServerOptions& o, Metrics& metrics,
                                                            const std::shared_ptr<ProcessMetrics>& process) {
  if (o.metrics_port <= 0) return std::unique_ptr<prometheus::Exposer>();
  try {
    // Enough threads that a few stalled clients cannot block the scrape, and a timeout that closes a
    // connection which never finishes its request.
    auto exposer = std::make_unique<prometheus::Exposer>(std::vector<std::string>{
        "listening_ports", HostPort(o.host, o.metrics_port), "num_threads", std::to_string(o.metrics_threads),
        "request_timeout_ms", std::to_string(o.metrics_timeout_ms)});
    exposer->RegisterCollectable(metrics.registry());
    exposer->RegisterCollectable(process);
    exposer->RegisterCollectable(metrics.triton_names());
    return exposer;
  } catch (const std::exception& e) {
    return Unavailable(e.what());
  }
}

// Opens and closes a TCP connection to host:port (a numeric address), ignoring failure.
void Knock(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const bool connected = connect(fd, a->ai_addr, a->ai_addrlen) == 0;
    close(fd);
    if (connected) break;
  }
  freeaddrinfo(found);
}

// Stops the /metrics endpoint. civetweb (under prometheus-cpp's Exposer) notices a stop only when its accept
// loop's poll() returns, which with no client connecting takes its whole 2 s quantum (civetweb's
// SOCKET_TIMEOUT_QUANTUM), so every shutdown would take 2 s longer than its drain. civetweb has no call that
// wakes that loop; a connection does, so this connects to the port until the exposer has stopped.
void StopMetrics(std::unique_ptr<prometheus::Exposer> exposer, const std::string& host) {
  if (!exposer) return;
  const std::vector<int> ports = exposer->GetListeningPorts();
  std::atomic<bool> stopped = false;
  std::thread stop([&] {
    exposer.reset();
    stopped = true;
  });
  const std::string target = host.empty() || host == "0.0.0.0" ? "127.0.0.1" : host == "::" ? "::1" : host;
  while (!stopped) {
    for (const int port : ports) Knock(target, port);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop.join();
}

frontends::HttpServer::Options HttpOptions(const ServerOptions& o, TransportMetrics* transport) {
  frontends::HttpServer::Options h;
  h.host = o.host;
  h.port = o.http_port;
  h.threads = o.http_threads;
  h.max_body_bytes = static_cast<size_t>(o.max_request_bytes);
  h.max_connections = static_cast<size_t>(o.http_max_connections);
  h.request_timeout_s = o.http_request_timeout_s;
  h.io_timeout_s = o.http_io_timeout_s;
  h.worker_threads = o.http_worker_threads;
  h.transport = transport;
  return h;
}

// SIGTERM: readiness off, then (after --shutdown-delay-s) no new connections, requests in flight finish
// within --grace-period-s, replies are written, and the frontends stop. Returns whether it drained.
bool Drain(const ServerOptions& o, InferenceServer& server, frontends::GrpcServer& grpc, frontends::HttpServer& http) {
  server.BeginDrain();
  grpc.UpdateHealth();
  if (o.shutdown_delay_s > 0) std::this_thread::sleep_for(std::chrono::duration<double>(o.shutdown_delay_s));

  const auto grace =
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(o.grace_period_s));
  http.StopAccepting();
  std::thread grpc_stop([&] {
    grpc.Shutdown(std::chrono::system_clock::now() +
                  std::chrono::duration_cast<std::chrono::system_clock::duration>(grace));
  });
  // From here on the core admits nothing: a request still arriving on an open HTTP connection gets
  // UNAVAILABLE, so none can be running while the objects of RunServer are destroyed.
  const bool drained = server.Close(std::chrono::steady_clock::now() + grace);
  grpc_stop.join();
  // Returns once each event loop has written the replies handed to it; when requests are still running
  // past the grace period there is nothing to wait for (their connections are cut).
  http.Stop(drained ? std::chrono::seconds(1) : std::chrono::seconds(0));
  return drained;
}

}  // namespace

int RunServer(const ServerOptions& o) {
  sigset_t signals = PrepareProcess();

  Metrics metrics(SERVING_VERSION);
  // The exposer holds collectables by weak_ptr: both must live as long as it does.
  const auto process_metrics = std::make_shared<ProcessMetrics>();
  auto exposer = StartMetrics(o, metrics, process_metrics);
  if (!exposer.ok()) return Fail("cannot start the metrics endpoint", exposer.status());

  BackendRegistry backends;
  onnxruntime::Register(&backends,
                        {static_cast<uint32_t>(o.ort_intra_op_threads), static_cast<uint32_t>(o.ort_inter_op_threads)});
  trees::Register(&backends);
  ModelRepository repository({o.model_repository, std::chrono::milliseconds(o.repository_poll_ms)}, &backends,
                             &metrics);
  InferenceServer server({o.default_model, o.access_log_sample_rate}, &repository, &metrics);
  logging::Info("loading models", {{"model_repository", o.model_repository}});
  repository.Poll();

  frontends::GrpcServer grpc(&server, &metrics);
  auto grpc_port = grpc.Start({HostPort(o.host, o.grpc_port), static_cast<int>(o.max_request_bytes)});
  if (!grpc_port.ok()) return Fail("cannot start gRPC", grpc_port.status());
  repository.SetOnChange([&grpc] { grpc.UpdateHealth(); });
  repository.StartPolling();

  frontends::HttpServer http;
  frontends::AddV1Routes(&http, &server);
  frontends::AddV2Routes(&http, &server);
  auto http_port = http.Start(HttpOptions(o, &metrics));
  if (!http_port.ok()) return Fail("cannot start HTTP", http_port.status());

  logging::Info("server started", {{"grpc_port", *grpc_port},
                                   {"http_port", *http_port},
                                   {"metrics_port", o.metrics_port},
                                   {"ready", server.Ready()},
                                   {"default_model", server.DefaultModel()}});

  int sig = 0;
  sigwait(&signals, &sig);
  const auto start = std::chrono::steady_clock::now();
  logging::Info("shutdown requested: readiness off, draining", {{"signal", sig}, {"inflight", server.inflight()}});
  const bool drained = Drain(o, server, grpc, http);
  repository.StopPolling();
  if (drained) StopMetrics(std::move(exposer).value(), o.host);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  logging::Info("shutdown complete", {{"drained", drained}, {"inflight", server.inflight()}, {"seconds", took}});
  if (!drained) {
    // Requests past the grace period are still running on worker threads: leave without running the
    // destructors they would race with.
    std::fflush(nullptr);
    std::_Exit(0);
  }
  return 0;
}

}  // namespace serving
