#include "server/options.h"

#include <charconv>
#include <functional>
#include <map>

#include "server/trace_config.h"

namespace serving {
namespace {

struct Flag {
  const char* help;
  std::function<bool(const std::string&)> set;
};

template <typename T>
std::function<bool(const std::string&)> Number(T* out) {
  return [out](const std::string& v) {
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), *out);
    return ec == std::errc() && p == v.data() + v.size();
  };
}

std::function<bool(const std::string&)> Text(std::string* out) {
  return [out](const std::string& v) {
    *out = v;
    return true;
  };
}

std::function<bool(const std::string&)> Append(std::vector<std::string>* out) {
  return [out](const std::string& v) {
    out->push_back(v);
    return !v.empty();
  };
}

std::function<bool(const std::string&)> Bool(bool* out) {
  return [out](const std::string& v) {
    if (v != "true" && v != "false" && v != "1" && v != "0") return false;
    *out = v == "true" || v == "1";
    return true;
  };
}

// Triton's --repository-poll-secs, kept in milliseconds.
std::function<bool(const std::string&)> PollSeconds(ServerOptions* o) {
  return [o](const std::string& v) {
    int secs = 0;
    if (!Number(&secs)(v) || secs < 0 || secs > 86400) return false;
    o->repository_poll_ms = secs * 1000;
    o->repository_poll_set = true;
    return true;
  };
}

// Where and how the transports listen, and their limits.
void TransportFlags(ServerOptions* o, std::map<std::string, Flag>& flags) {
  flags.insert({
      {"host", {"address to listen on (default 0.0.0.0)", Text(&o->host)}},
      {"grpc-port", {"gRPC port: inference.v1, KServe v2, health, reflection (default 50051)", Number(&o->grpc_port)}},
      {"http-port", {"HTTP/REST port: /v1, /v2, /healthz, /readyz (default 8080)", Number(&o->http_port)}},
      {"metrics-port", {"Prometheus /metrics port, 0 disables (default 8002)", Number(&o->metrics_port)}},
      {"http-threads", {"HTTP event-loop threads (default 2)", Number(&o->http_threads)}},
      {"http-worker-threads",
       {"threads that decode and run HTTP inference requests off the event loops (default 2)",
        Number(&o->http_worker_threads)}},
      {"http-max-connections",
       {"open HTTP connections at most; more are closed when accepted (default 4096)",
        Number(&o->http_max_connections)}},
      {"http-request-timeout-s",
       {"an HTTP connection must send a complete request within this long of connecting or of its last reply; idle "
        "keep-alive connections close after it (default 60)",
        Number(&o->http_request_timeout_s)}},
      {"http-io-timeout-s",
       {"an HTTP connection that reads or writes nothing for this long is closed (default 120)",
        Number(&o->http_io_timeout_s)}},
      {"metrics-threads", {"threads serving /metrics (default 8)", Number(&o->metrics_threads)}},
      {"metrics-timeout-ms",
       {"a /metrics connection that sends or reads nothing for this long is closed (default 5000)",
        Number(&o->metrics_timeout_ms)}},
      {"max-request-bytes",
       {"largest request body / gRPC message accepted (default 67108864)", Number(&o->max_request_bytes)}},
  });
}

// Models, their control, shutdown, logging and ONNX Runtime's defaults.
void ModelFlags(ServerOptions* o, std::map<std::string, Flag>& flags) {
  flags.insert({
      {"model-repository",
       {"directory of models: <model>/config.pbtxt, <model>/<version>/model.onnx, or Triton's "
        "s3://[http(s)://host:port/]bucket/prefix with AWS_* credentials (required; repeatable: a model is "
        "served from the first that has it)",
        Append(&o->model_repositories)}},
      {"repository-cache-dir",
       {"where versions from object storage are downloaded (default $TMPDIR/inference-server-models)",
        Text(&o->repository_cache_dir)}},
      {"repository-max-file-bytes",
       {"largest file of a model version downloaded from object storage (default 4 GiB)",
        Number(&o->repository_max_file_bytes)}},
      {"repository-max-model-bytes",
       {"largest model version downloaded from object storage, all files together (default 16 GiB)",
        Number(&o->repository_max_model_bytes)}},
      {"s3-addressing",
       {"auto (default: path-style for an explicit endpoint, virtual-hosted for AWS), path or virtual",
        Text(&o->s3_addressing)}},
      {"s3-ca-file",
       {"PEM bundle that verifies the object store's certificate (default: AWS_CA_BUNDLE, else the system's)",
        Text(&o->s3_ca_file)}},
      {"model-control-mode",
       {"none (default): serve the models found at startup; poll: also rescan the repository every "
        "--repository-poll-ms; explicit: load --load-model models at startup and allow repository load/unload "
        "requests (refused in the other modes)",
        Text(&o->model_control_mode)}},
      {"strict-readiness",
       {"true (default): ready only while every model has a ready version; false: ready whatever the models' "
        "states, each model's readiness still its own (for a repository every replica polls: docs/deploy.md)",
        Bool(&o->strict_readiness)}},
      {"load-model",
       {"with --model-control-mode=explicit, a model to load at startup; repeatable; * loads every model",
        Append(&o->load_models)}},
      {"repository-poll-ms",
       {"with --model-control-mode=poll, how often to rescan the repository (default 2000)",
        [o](const std::string& v) {
          o->repository_poll_set = true;
          return Number(&o->repository_poll_ms)(v);
        }}},
      {"repository-poll-secs", {"Triton's spelling of --repository-poll-ms, in seconds", PollSeconds(o)}},
      {"default-model", {"model used when a /v1 request names none (default: first by name)", Text(&o->default_model)}},
      {"grace-period-s",
       {"on SIGTERM, how long in-flight requests may take to finish (default 30)", Number(&o->grace_period_s)}},
      {"shutdown-delay-s",
       {"on SIGTERM, how long to keep accepting after readiness turns false (default 0)",
        Number(&o->shutdown_delay_s)}},
      {"log-level", {"debug, info, warn or error (default info)", Text(&o->log_level)}},
      {"log-format", {"json or text (default json)", Text(&o->log_format)}},
      {"access-log-sample-rate",
       {"fraction of successful requests logged, 0..1 (default 1)", Number(&o->access_log_sample_rate)}},
      {"payload-log-url",
       {"send each request's inputs and outputs as CloudEvents (KServe's logger format) to this http(s) sink "
        "(default: off; docs/metrics.md#payload-logging)",
        Text(&o->payload_log_url)}},
      {"payload-log-mode", {"all (default), request or response: which events are sent", Text(&o->payload_log_mode)}},
      {"payload-log-sample-rate",
       {"fraction of requests whose events are sent, 0..1 (default 1)", Number(&o->payload_log_sample_rate)}},
      {"payload-log-max-bytes",
       {"largest event body sent; larger ones are dropped and counted (default 1048576)",
        Number(&o->payload_log_max_bytes)}},
      {"payload-log-queue",
       {"events waiting for the sink; past it new ones are dropped and counted (default 256)",
        Number(&o->payload_log_queue)}},
      {"payload-log-source", {"the events' source attribute (default inference-server)", Text(&o->payload_log_source)}},
      {"trace-url",
       {"export OpenTelemetry spans of requests over OTLP/HTTP (JSON) to this collector endpoint, e.g. "
        "http://otel-collector:4318/v1/traces (default: off; docs/metrics.md#tracing)",
        Text(&o->trace_url)}},
      {"trace-sample-rate",
       {"fraction of requests traced when no sampled or unsampled W3C traceparent came with them, 0..1 (default 1)",
        Number(&o->trace_sample_rate)}},
      {"trace-queue",
       {"spans waiting for the collector; past it new ones are dropped and counted (default 2048)",
        Number(&o->trace_queue)}},
      {"trace-batch", {"spans per export at most (default 512)", Number(&o->trace_batch)}},
      {"trace-delay-ms",
       {"a span waits at most this long before its batch is exported (default 5000)", Number(&o->trace_delay_ms)}},
      {"trace-resource",
       {"a resource attribute of every span, key=value (service.name, deployment.environment, ...); repeatable",
        Append(&o->trace_resource)}},
      {"trace-config",
       {"Triton's tracing settings: mode=opentelemetry, level=OFF|TIMESTAMPS, rate=N (one request in N), "
        "count=-1, opentelemetry,url=host:port/v1/traces, opentelemetry,resource=key=value, "
        "opentelemetry,bsp_max_queue_size=N, opentelemetry,bsp_max_export_batch_size=N, "
        "opentelemetry,bsp_schedule_delay=MS; repeatable",
        Append(&o->trace_config)}},
      {"ort-intra-op-threads",
       {"ONNX Runtime intra-op threads per model instance unless its config says; 0 (default): the available "
        "cores divided by the model's instances",
        Number(&o->ort_intra_op_threads)}},
      {"ort-inter-op-threads",
       {"ONNX Runtime inter-op threads per model unless its config says (default 1)",
        Number(&o->ort_inter_op_threads)}},
  });
}

// Authorization, TLS and what may be exposed.
void SecurityFlags(ServerOptions* o, std::map<std::string, Flag>& flags) {
  flags.insert({
      {"auth-tokens-file",
       {"JSON file of bearer tokens with their scopes (docs/security.md); re-read when it changes. Unset: no "
        "token is required",
        Text(&o->auth_tokens_file)}},
      {"auth-open",
       {"categories that need no token when tokens are on: comma-separated from health, metadata, "
        "model-config, inference, statistics, repository-index, model-control, metrics, or none (default "
        "health,metrics)",
        Text(&o->auth_open)}},
      {"http-restricted-api",
       {"Triton's <categories>:<header>=<value>: HTTP requests of those categories need that header; repeatable",
        Append(&o->http_restricted_api)}},
      {"grpc-restricted-protocol",
       {"Triton's <categories>:<key>=<value>: gRPC calls of those categories need metadata "
        "triton-grpc-protocol-<key>=<value>; repeatable",
        Append(&o->grpc_restricted_protocol)}},
      {"grpc-tls-cert", {"PEM certificate chain: serve gRPC over TLS (with --grpc-tls-key)", Text(&o->grpc_tls_cert)}},
      {"grpc-tls-key", {"PEM private key of --grpc-tls-cert", Text(&o->grpc_tls_key)}},
      {"grpc-tls-client-ca",
       {"PEM CA bundle: gRPC clients must present a certificate it signed (mutual TLS)", Text(&o->grpc_tls_client_ca)}},
      {"grpc-use-ssl", {"Triton's spelling: serve gRPC over TLS (true/false)", Bool(&o->grpc_use_ssl)}},
      {"grpc-use-ssl-mutual",
       {"Triton's spelling: require client certificates signed by --grpc-root-cert (true/false)",
        Bool(&o->grpc_use_ssl_mutual)}},
      {"grpc-server-cert", {"Triton's spelling of --grpc-tls-cert", Text(&o->grpc_tls_cert)}},
      {"grpc-server-key", {"Triton's spelling of --grpc-tls-key", Text(&o->grpc_tls_key)}},
      {"grpc-root-cert",
       {"Triton's spelling: the client CA of --grpc-use-ssl-mutual (ignored without it, as in Triton)",
        Text(&o->grpc_root_cert)}},
      {"grpc-reflection",
       {"serve gRPC server reflection: auto (default: unless tokens or restricted APIs are on, since gRPC's "
        "reflection service cannot pass the authorizer), true or false",
        Text(&o->grpc_reflection)}},
      {"http-tls-cert", {"PEM certificate chain: serve HTTP over TLS (with --http-tls-key)", Text(&o->http_tls_cert)}},
      {"http-tls-key", {"PEM private key of --http-tls-cert", Text(&o->http_tls_key)}},
      {"http-tls-client-ca",
       {"PEM CA bundle: HTTP clients must present a certificate it signed (mutual TLS)", Text(&o->http_tls_client_ca)}},
      {"tls-reload-s",
       {"how often certificate, key and CA files are checked for changes, in seconds (default 1)",
        Number(&o->tls_reload_s)}},
      {"tls-handshake-timeout-s",
       {"a connection that has not completed its TLS handshake within this long is closed (default 10)",
        Number(&o->tls_handshake_timeout_s)}},
      {"list-endpoints",
       {"print every HTTP route and gRPC method with its authorization category as JSON, then exit (true/false)",
        Bool(&o->list_endpoints)}},
  });
}

std::map<std::string, Flag> Flags(ServerOptions* o) {
  std::map<std::string, Flag> flags;
  TransportFlags(o, flags);
  ModelFlags(o, flags);
  SecurityFlags(o, flags);
  return flags;
}

}  // namespace

std::string UsageText() {
  ServerOptions o;
  std::string s = "usage: inference-server --model-repository DIR [flags]\n\n";
  for (const auto& [name, flag] : Flags(&o))
    s += "  --" + name + std::string(name.size() < 24 ? 24 - name.size() : 1, ' ') + flag.help + "\n";
  return s;
}

namespace {

// Ports, sizes, threads and timeouts of the transports and the metrics endpoint.
Status CheckTransports(const ServerOptions& o) {
  for (int port : {o.grpc_port, o.http_port, o.metrics_port})
    if (port < 0 || port > 65535) return InvalidArgument("ports must be within 0..65535");
  if (o.max_request_bytes <= 0 || o.max_request_bytes > (1LL << 31) - 1)
    return InvalidArgument("--max-request-bytes must be within 1..2147483647");
  if (o.http_threads < 1 || o.http_threads > 64) return InvalidArgument("--http-threads must be within 1..64");
  if (o.http_worker_threads < 1 || o.http_worker_threads > 256)
    return InvalidArgument("--http-worker-threads must be within 1..256");
  if (o.http_max_connections < 1) return InvalidArgument("--http-max-connections must be at least 1");
  if (!(o.http_request_timeout_s > 0) || o.http_request_timeout_s > 86400)
    return InvalidArgument("--http-request-timeout-s must be within (0, 86400]");
  if (o.http_io_timeout_s < 1) return InvalidArgument("--http-io-timeout-s must be at least 1");
  if (o.metrics_threads < 1 || o.metrics_threads > 256)
    return InvalidArgument("--metrics-threads must be within 1..256");
  if (o.metrics_timeout_ms < 1) return InvalidArgument("--metrics-timeout-ms must be at least 1");
  return Status::Ok();
}

// Logging, model control and the repository.
Status CheckModelControl(const ServerOptions& o) {
  if (o.log_format != "json" && o.log_format != "text") return InvalidArgument("--log-format must be json or text");
  if (o.model_control_mode != "none" && o.model_control_mode != "poll" && o.model_control_mode != "explicit")
    return InvalidArgument("--model-control-mode must be none, poll or explicit");
  if (o.model_control_mode == "poll" && (o.repository_poll_ms < 1 || o.repository_poll_ms > 86400000))
    return InvalidArgument("--repository-poll-ms must be within 1..86400000 with --model-control-mode=poll");
  if (o.model_control_mode != "poll" && o.repository_poll_set)
    return InvalidArgument("--repository-poll-ms applies to --model-control-mode=poll only (the mode is " +
                           o.model_control_mode + ")");
  if (o.model_control_mode != "explicit" && !o.load_models.empty())
    return InvalidArgument("--load-model applies to --model-control-mode=explicit only (the mode is " +
                           o.model_control_mode + ")");
  if (o.access_log_sample_rate < 0 || o.access_log_sample_rate > 1)
    return InvalidArgument("--access-log-sample-rate must be within 0..1");
  if (!o.payload_log_url.empty() && o.payload_log_url.rfind("http://", 0) != 0 &&
      o.payload_log_url.rfind("https://", 0) != 0)
    return InvalidArgument("--payload-log-url must start with http:// or https://");
  if (o.payload_log_mode != "all" && o.payload_log_mode != "request" && o.payload_log_mode != "response")
    return InvalidArgument("--payload-log-mode must be all, request or response");
  if (o.payload_log_sample_rate < 0 || o.payload_log_sample_rate > 1)
    return InvalidArgument("--payload-log-sample-rate must be within 0..1");
  if (o.payload_log_max_bytes < 1 || o.payload_log_queue < 1 || o.payload_log_queue > 1000000)
    return InvalidArgument("--payload-log-max-bytes must be at least 1 and --payload-log-queue within 1..1000000");
  if (o.repository_max_file_bytes < 1 || o.repository_max_model_bytes < 1)
    return InvalidArgument("--repository-max-file-bytes and --repository-max-model-bytes must be at least 1");
  if (o.s3_addressing != "auto" && o.s3_addressing != "path" && o.s3_addressing != "virtual")
    return InvalidArgument("--s3-addressing must be auto, path or virtual");
  return Status::Ok();
}

// TLS and reflection; Triton's --grpc-use-ssl-mutual names the client CA.
Status CheckTls(ServerOptions& o) {
  if (o.grpc_use_ssl && (o.grpc_tls_cert.empty() || o.grpc_tls_key.empty()))
    return InvalidArgument("--grpc-use-ssl needs --grpc-server-cert and --grpc-server-key");
  if (o.grpc_use_ssl_mutual && o.grpc_root_cert.empty())
    return InvalidArgument("--grpc-use-ssl-mutual needs --grpc-root-cert");
  if (o.grpc_use_ssl_mutual) o.grpc_tls_client_ca = o.grpc_root_cert;
  if (o.grpc_tls_cert.empty() != o.grpc_tls_key.empty())
    return InvalidArgument("gRPC TLS needs both --grpc-tls-cert and --grpc-tls-key");
  if (!o.grpc_tls_client_ca.empty() && o.grpc_tls_cert.empty())
    return InvalidArgument("--grpc-tls-client-ca needs --grpc-tls-cert and --grpc-tls-key");
  if (o.http_tls_cert.empty() != o.http_tls_key.empty())
    return InvalidArgument("HTTP TLS needs both --http-tls-cert and --http-tls-key");
  if (!o.http_tls_client_ca.empty() && o.http_tls_cert.empty())
    return InvalidArgument("--http-tls-client-ca needs --http-tls-cert and --http-tls-key");
  if (o.grpc_reflection != "auto" && o.grpc_reflection != "true" && o.grpc_reflection != "false")
    return InvalidArgument("--grpc-reflection must be auto, true or false");
  if (o.tls_reload_s < 1 || o.tls_reload_s > 3600) return InvalidArgument("--tls-reload-s must be within 1..3600");
  if (o.tls_handshake_timeout_s < 1 || o.tls_handshake_timeout_s > 600)
    return InvalidArgument("--tls-handshake-timeout-s must be within 1..600");
  return Status::Ok();
}

}  // namespace

StatusOr<ServerOptions> ParseOptions(int argc, char** argv) {
  ServerOptions o;
  auto flags = Flags(&o);
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      o.help = true;
      return o;
    }
    if (arg.rfind("--", 0) != 0) return InvalidArgument("unexpected argument '" + arg + "'");
    arg = arg.substr(2);
    std::string value;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return InvalidArgument("--" + arg + " needs a value");
    }
    auto it = flags.find(arg);
    if (it == flags.end()) return InvalidArgument("unknown flag --" + arg);
    if (!it->second.set(value)) return InvalidArgument("--" + arg + ": invalid value '" + value + "'");
  }
  if (o.model_repositories.empty() && !o.list_endpoints) return InvalidArgument("--model-repository is required");
  SERVING_RETURN_IF_ERROR(CheckTransports(o));
  SERVING_RETURN_IF_ERROR(CheckModelControl(o));
  SERVING_RETURN_IF_ERROR(CheckTls(o));
  SERVING_RETURN_IF_ERROR(ApplyTraceConfig(o));
  return o;
}

}  // namespace serving
