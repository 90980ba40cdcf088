// Command-line options of inference-server (`--help` prints them).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace serving {

struct ServerOptions {
  std::vector<std::string> model_repositories;  // --model-repository, repeatable (Triton's)
  std::string host = "0.0.0.0";
  int grpc_port = 50051;
  int http_port = 8080;
  int metrics_port = 8002;  // 0 disables the metrics endpoint
  int http_threads = 2;
  int http_worker_threads = 2;
  int http_max_connections = 4096;
  double http_request_timeout_s = 60;
  int http_io_timeout_s = 120;
  int metrics_threads = 8;
  int metrics_timeout_ms = 5000;
  int64_t max_request_bytes = 64 << 20;
  // Triton's model control modes. none: the models found at startup are served until exit; poll: the
  // repository is rescanned every repository_poll_ms; explicit: only --load-model models are loaded at
  // startup and the repository API loads and unloads. Repository load/unload is refused unless explicit.
  std::string model_control_mode = "none";
  std::vector<std::string> load_models;  // --load-model, repeatable; "*" loads every model
  int repository_poll_ms = 2000;
  bool repository_poll_set = false;  // --repository-poll-ms or --repository-poll-secs was given
  // Object storage (--model-repository s3://...): where versions are downloaded to, and the bounds on them.
  std::string repository_cache_dir;  // "": $TMPDIR (or /tmp) + /inference-server-models
  int64_t repository_max_file_bytes = int64_t{4} << 30;
  int64_t repository_max_model_bytes = int64_t{16} << 30;
  std::string s3_addressing = "auto";  // auto (path-style for an explicit endpoint), path, virtual
  std::string s3_ca_file;              // "": AWS_CA_BUNDLE, else the system's
  std::string default_model;
  double grace_period_s = 30;
  double shutdown_delay_s = 0;
  bool strict_readiness = true;
  std::string log_level = "info";
  std::string log_format = "json";
  double access_log_sample_rate = 1.0;
  // Payload logging (observability/payload_log.h): CloudEvents of requests and responses to an HTTP sink.
  std::string payload_log_url;  // "": off
  std::string payload_log_mode = "all";
  double payload_log_sample_rate = 1.0;
  int64_t payload_log_max_bytes = int64_t{1} << 20;
  int64_t payload_log_queue = 256;
  std::string payload_log_source = "inference-server";
  // Tracing (observability/tracing.h): OpenTelemetry spans over OTLP/HTTP; Triton's --trace-config settings are
  // applied onto these by ParseOptions (server/trace_config.h).
  std::string trace_url;  // "": off
  double trace_sample_rate = 1.0;
  int64_t trace_queue = 2048;
  int64_t trace_batch = 512;
  int64_t trace_delay_ms = 5000;
  std::vector<std::string> trace_resource;  // key=value
  std::vector<std::string> trace_config;    // Triton's [opentelemetry,]key=value
  // Authorization (docs/security.md): bearer tokens, the categories open without one, Triton's restricted APIs.
  std::string auth_tokens_file;
  std::string auth_open = "health,metrics";
  std::vector<std::string> http_restricted_api;
  std::vector<std::string> grpc_restricted_protocol;
  // gRPC TLS: certificate chain and key (PEM); with a client CA, clients must present a certificate it signed.
  std::string grpc_tls_cert;
  std::string grpc_tls_key;
  std::string grpc_tls_client_ca;
  bool grpc_use_ssl = false;             // Triton's --grpc-use-ssl
  bool grpc_use_ssl_mutual = false;      // Triton's --grpc-use-ssl-mutual
  std::string grpc_root_cert;            // Triton's --grpc-root-cert: the client CA, with --grpc-use-ssl-mutual only
  std::string grpc_reflection = "auto";  // auto: on unless authorization is configured
  // HTTP TLS, the same way.
  std::string http_tls_cert;
  std::string http_tls_key;
  std::string http_tls_client_ca;
  int tls_reload_s = 1;
  int tls_handshake_timeout_s = 10;
  bool list_endpoints = false;   // print the route table and gRPC methods with their categories, then exit
  int ort_intra_op_threads = 0;  // 0: cores / instances
  int ort_inter_op_threads = 1;
  bool help = false;
};

StatusOr<ServerOptions> ParseOptions(int argc, char** argv);
std::string UsageText();

}  // namespace serving
