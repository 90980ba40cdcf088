#include "server/server.h"

#include <google/protobuf/stubs/logging.h>
#include <grpc/support/log.h>
#include <malloc.h>
#include <netdb.h>
#include <prometheus/exposer.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <csignal>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "auth/authorizer.h"
#include "backends/onnxruntime/onnxruntime_backend.h"
#include "backends/trees/trees_backend.h"
#include "core/inference_server.h"
#include "core/model_repository.h"
#include "frontends/grpc/call_gate.h"
#include "frontends/grpc/grpc_server.h"
#include "frontends/grpc/handshake_watch.h"
#include "frontends/http/routes.h"
#include "frontends/http/v2_json.h"
#include "observability/access_log.h"
#include "observability/logger.h"
#include "observability/metrics_observer.h"
#include "observability/payload_log.h"
#include "observability/process_metrics.h"
#include "observability/tracing.h"
#include "sources/open_source.h"
#include "tls/tls_context.h"

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
// per-line log stream: route them through the logger instead. gRPC is asked for its debug lines too, because
// its one report of a failed handshake is one (handshake_watch.h); otherwise only the lines at or above
// GRPC_VERBOSITY (gRPC's default: ERROR) are logged, as before.
void RouteLibraryLogs() {
  static gpr_log_severity threshold = GPR_LOG_SEVERITY_ERROR;
  if (const char* v = std::getenv("GRPC_VERBOSITY"); v != nullptr) {
    if (strcasecmp(v, "DEBUG") == 0) threshold = GPR_LOG_SEVERITY_DEBUG;
    if (strcasecmp(v, "INFO") == 0) threshold = GPR_LOG_SEVERITY_INFO;
  }
  gpr_set_log_verbosity(GPR_LOG_SEVERITY_DEBUG);
  gpr_set_log_function([](gpr_log_func_args* args) {
    if (frontends::ObserveGrpcLibraryLine(args->severity, args->message) || args->severity < threshold) return;
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
// The /metrics endpoint's one authorization step, through the same authorizer as every other route.
// prometheus-cpp's civetweb offers HTTP Basic authentication only: the password is the bearer token (in
// Prometheus: basic_auth with password_file), the user name is not looked at.
void GuardMetrics(prometheus::Exposer& exposer, const auth::Authorizer& authorizer) {
  exposer.RegisterAuth(
      [&authorizer](const std::string&, const std::string& password) {
        auth::RequestContext context;
        context.transport = auth::Transport::kHttp;
        context.operation = "GET /metrics";
        context.category = auth::Category::kMetrics;
        context.header = [&password](std::string_view name) {
          return name == "authorization" ? "Bearer " + password : std::string();
        };
        return authorizer.Authorize(context).ok();
      },
      "metrics");
}

StatusOr<std::unique_ptr<prometheus::Exposer>> StartMetrics(const ServerOptions& o, Metrics& metrics,
                                                            const std::shared_ptr<ProcessMetrics>& process,
                                                            const auth::Authorizer& authorizer) {
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
    if (authorizer.NeedsToken(auth::Category::kMetrics)) GuardMetrics(*exposer, authorizer);
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

// The one authorizer of both transports, from the auth flags.
StatusOr<std::unique_ptr<auth::Authorizer>> MakeAuthorizer(const ServerOptions& o, SecurityMetrics* metrics) {
  auth::Authorizer::Options a;
  a.tokens_file = o.auth_tokens_file;
  auto open = auth::ParseCategories(o.auth_open);
  if (!open.ok()) return InvalidArgument("--auth-open: " + open.status().message());
  a.open = *open;
  for (const auto& v : o.http_restricted_api)
    if (Status s = a.restricted.Add(auth::Transport::kHttp, v); !s.ok()) return s;
  for (const auto& v : o.grpc_restricted_protocol)
    if (Status s = a.restricted.Add(auth::Transport::kGrpc, v); !s.ok()) return s;
  return auth::Authorizer::Create(std::move(a), metrics);
}

frontends::GrpcServer::Options GrpcOptions(const ServerOptions& o, const auth::Authorizer* authorizer) {
  frontends::GrpcServer::Options g;
  g.address = HostPort(o.host, o.grpc_port);
  g.max_message_bytes = static_cast<int>(o.max_request_bytes);
  g.authorizer = authorizer;
  g.reflection = o.grpc_reflection == "true" || (o.grpc_reflection == "auto" && !authorizer->enabled());
  g.tls_cert = o.grpc_tls_cert;
  g.tls_key = o.grpc_tls_key;
  g.tls_client_ca = o.grpc_tls_client_ca;
  g.tls_reload_s = o.tls_reload_s;
  g.handshake_timeout_s = o.tls_handshake_timeout_s;
  return g;
}

// A listener's TLS context, or null when its certificate flags are not given. Files that do not load stop the
// server with the reason; later changes are re-read every --tls-reload-s.
StatusOr<std::unique_ptr<tls::TlsContext>> MakeTls(const char* listener, const std::string& cert,
                                                   const std::string& key, const std::string& client_ca,
                                                   const ServerOptions& o, SecurityMetrics* metrics) {
  if (cert.empty()) return std::unique_ptr<tls::TlsContext>();
  tls::TlsFiles files{cert, key, client_ca, std::string(listener) == "http"};
  return tls::TlsContext::Create(listener, std::move(files), std::chrono::seconds(o.tls_reload_s), metrics);
}

frontends::HttpServer::Options HttpOptions(const ServerOptions& o, TransportMetrics* transport,
                                           const auth::Authorizer* authorizer, const tls::TlsContext* tls) {
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
  h.authorizer = authorizer;
  h.tls = tls;
  h.handshake_timeout_s = o.tls_handshake_timeout_s;
  return h;
}

// At startup: every model, except in explicit mode, where only the --load-model ones (all with "*").
void LoadInitialModels(const ServerOptions& o, ModelRepository& repository) {
  const auto& names = o.load_models;
  if (o.model_control_mode != "explicit" || std::find(names.begin(), names.end(), "*") != names.end()) {
    repository.Poll();
    return;
  }
  for (const auto& name : names)
    if (Status s = repository.Load(name); !s.ok())
      logging::Error("cannot load a --load-model model", {{"model", name}, {"reason", s.message()}});
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

int ListEndpoints() {
  frontends::HttpServer http;
  frontends::AddV1Routes(&http, nullptr);
  frontends::AddV2Routes(&http, nullptr);
  nlohmann::json out = {{"http", nlohmann::json::array()}, {"grpc", nlohmann::json::array()}};
  for (const auto& r : http.routes())
    out["http"].push_back({{"method", r.method}, {"pattern", r.pattern}, {"category", auth::CategoryName(r.category)}});
  for (const auto& [name, method] : frontends::DescribedGrpcMethods())
    out["grpc"].push_back({{"method", name}, {"category", method ? auth::CategoryName(method->category) : nullptr}});
  std::puts(out.dump(2).c_str());
  return 0;
}

namespace {

// Authorization and the TLS contexts, checked before anything listens.
struct Security {
  std::unique_ptr<auth::Authorizer> authorizer;
  std::unique_ptr<tls::TlsContext> grpc_tls, http_tls;
};

// 0, or the exit code after logging why not.
int StartSecurity(const ServerOptions& o, Metrics& metrics, Security* out) {
  auto authorizer = MakeAuthorizer(o, &metrics);
  if (!authorizer.ok()) return Fail("cannot start authorization", authorizer.status());
  out->authorizer = std::move(authorizer).value();
  if (out->authorizer->enabled() && o.grpc_reflection == "true")
    return Fail("cannot start gRPC", InvalidArgument("--grpc-reflection true with authorization on: gRPC's reflection "
                                                     "service cannot pass the authorizer (use the .proto files)"));
  out->authorizer->StartReloading();
  // gRPC re-reads its own certificate files; this context checks them at startup and counts their reloads.
  auto grpc_tls = MakeTls("grpc", o.grpc_tls_cert, o.grpc_tls_key, o.grpc_tls_client_ca, o, &metrics);
  if (!grpc_tls.ok()) return Fail("cannot start gRPC TLS", grpc_tls.status());
  out->grpc_tls = std::move(grpc_tls).value();
  auto http_tls = MakeTls("http", o.http_tls_cert, o.http_tls_key, o.http_tls_client_ca, o, &metrics);
  if (!http_tls.ok()) return Fail("cannot start HTTP TLS", http_tls.status());
  out->http_tls = std::move(http_tls).value();
  return 0;
}

void LogStarted(const ServerOptions& o, const InferenceServer& server, const Security& security, int grpc_port,
                int http_port) {
  logging::Info("server started", {{"grpc_port", grpc_port},
                                   {"http_port", http_port},
                                   {"metrics_port", o.metrics_port},
                                   {"authorization", security.authorizer->enabled()},
                                   {"grpc_tls", !o.grpc_tls_cert.empty()},
                                   {"grpc_mutual_tls", !o.grpc_tls_client_ca.empty()},
                                   {"http_tls", !o.http_tls_cert.empty()},
                                   {"http_mutual_tls", !o.http_tls_client_ca.empty()},
                                   {"ready", server.Ready()},
                                   {"default_model", server.DefaultModel()}});
}

// After SIGTERM/SIGINT: drains, stops polling and, once drained, the metrics endpoint (else it is left running
// for the process's quick exit). Returns whether it drained.
bool ShutDown(const ServerOptions& o, int sig, InferenceServer& server, frontends::GrpcServer& grpc,
              frontends::HttpServer& http, ModelRepository& repository, std::unique_ptr<prometheus::Exposer>& exposer) {
  const auto start = std::chrono::steady_clock::now();
  logging::Info("shutdown requested: readiness off, draining", {{"signal", sig}, {"inflight", server.inflight()}});
  const bool drained = Drain(o, server, grpc, http);
  repository.StopPolling();
  if (drained) StopMetrics(std::move(exposer), o.host);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  logging::Info("shutdown complete", {{"drained", drained}, {"inflight", server.inflight()}, {"seconds", took}});
  return drained;
}

// Tracing's options; its resource: the service, then the pod from the downward API (deploy/k8s), then
// --trace-resource (which may override either).
TracingOptions TracingFrom(const ServerOptions& o) {
  std::vector<std::pair<std::string, std::string>> resource = {{"service.name", "inference-server"},
                                                               {"service.version", SERVING_VERSION}};
  for (const auto& [env, key] :
       {std::pair{"POD_NAME", "k8s.pod.name"}, std::pair{"POD_NAMESPACE", "k8s.namespace.name"},
        std::pair{"NODE_NAME", "k8s.node.name"}})
    if (const char* value = std::getenv(env); value && *value) resource.emplace_back(key, value);
  for (const auto& kv : o.trace_resource) {
    const size_t eq = kv.find('=');
    std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
    auto same = std::find_if(resource.begin(), resource.end(), [&](const auto& r) { return r.first == key; });
    if (same != resource.end())
      same->second = std::move(value);
    else
      resource.emplace_back(std::move(key), std::move(value));
  }
  return {.url = o.trace_url,
          .sample_rate = o.trace_sample_rate,
          .queue = static_cast<size_t>(o.trace_queue),
          .batch = static_cast<size_t>(o.trace_batch),
          .delay = std::chrono::milliseconds(o.trace_delay_ms),
          .timeout = std::chrono::milliseconds(10000),
          .resource = std::move(resource)};
}

}  // namespace

int RunServer(const ServerOptions& o) {
  if (o.list_endpoints) return ListEndpoints();
  sigset_t signals = PrepareProcess();

  Metrics metrics(SERVING_VERSION);
  // The exposer holds collectables by weak_ptr: both must live as long as it does.
  const auto process_metrics = std::make_shared<ProcessMetrics>();
  Security security;
  if (int rc = StartSecurity(o, metrics, &security)) return rc;
  auto exposer = StartMetrics(o, metrics, process_metrics, *security.authorizer);
  if (!exposer.ok()) return Fail("cannot start the metrics endpoint", exposer.status());

  BackendRegistry backends;
  onnxruntime::Register(&backends,
                        {static_cast<uint32_t>(o.ort_intra_op_threads), static_cast<uint32_t>(o.ort_inter_op_threads)});
  trees::Register(&backends);
  // Who watches requests (core/request_observer.h), in this order; they outlive the repository and the server.
  MetricsObserver metrics_observer(metrics);
  AccessLog access_log(o.access_log_sample_rate);
  RequestObservers observers;
  observers.Add(&metrics_observer);
  observers.Add(&access_log);
  // Always there: with no --payload-log-url it only judges the models' payload_log_* parameters.
  const char* pod_namespace = std::getenv("POD_NAMESPACE");  // the downward API's, in the Deployment
  PayloadLog payload_log(
      PayloadLogOptions{.url = o.payload_log_url,
                        .mode = o.payload_log_mode,
                        .sample_rate = o.payload_log_sample_rate,
                        .max_bytes = static_cast<size_t>(o.payload_log_max_bytes),
                        .queue = static_cast<size_t>(o.payload_log_queue),
                        .source = o.payload_log_source,
                        .namespace_name = pod_namespace ? pod_namespace : "",
                        .endpoint = "",
                        .timeout = std::chrono::milliseconds(2000)},
      PayloadEncoders{[](const InferRequest& r) { return frontends::EncodeV2InferRequestJson(r); },
                      [](const InferResponse& r) { return frontends::EncodeV2InferResponse(r, {}).bytes; }},
      *metrics.registry());
  observers.Add(&payload_log);
  std::unique_ptr<Tracing> tracing;
  if (!o.trace_url.empty()) {
    tracing = std::make_unique<Tracing>(TracingFrom(o), *metrics.registry());
    observers.Add(tracing.get());
  }
  auto source = OpenRepositorySource(
      {o.model_repositories, o.repository_cache_dir, static_cast<uint64_t>(o.repository_max_file_bytes),
       static_cast<uint64_t>(o.repository_max_model_bytes), o.s3_addressing, o.s3_ca_file, &metrics});
  if (!source.ok()) return Fail("cannot open the model repository", source.status());
  const std::string repositories = (*source)->Describe();
  const bool poll = o.model_control_mode == "poll";
  ModelRepository repository(std::move(source).value(), {std::chrono::milliseconds(poll ? o.repository_poll_ms : 0)},
                             &backends, &metrics, &observers);
  InferenceServer server({o.default_model, o.model_control_mode == "explicit", o.strict_readiness}, &repository,
                         &observers);
  logging::Info("loading models", {{"model_repository", repositories},
                                   {"model_control_mode", o.model_control_mode},
                                   {"poll_ms", poll ? o.repository_poll_ms : 0},
                                   {"strict_readiness", o.strict_readiness}});
  LoadInitialModels(o, repository);

  frontends::GrpcServer grpc(&server, &metrics);
  auto grpc_port = grpc.Start(GrpcOptions(o, security.authorizer.get()));
  if (!grpc_port.ok()) return Fail("cannot start gRPC", grpc_port.status());
  repository.SetOnChange([&grpc] { grpc.UpdateHealth(); });
  repository.StartPolling();

  frontends::HttpServer http;
  frontends::AddV1Routes(&http, &server);
  frontends::AddV2Routes(&http, &server);
  auto http_port = http.Start(HttpOptions(o, &metrics, security.authorizer.get(), security.http_tls.get()));
  if (!http_port.ok()) return Fail("cannot start HTTP", http_port.status());
  LogStarted(o, server, security, *grpc_port, *http_port);

  int sig = 0;
  sigwait(&signals, &sig);
  if (!ShutDown(o, sig, server, grpc, http, repository, *exposer)) {
    // Requests past the grace period are still running on worker threads: leave without running the
    // destructors they would race with.
    std::fflush(nullptr);
    std::_Exit(0);
  }
  return 0;
}

}  // namespace serving
