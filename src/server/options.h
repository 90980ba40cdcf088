// Command-line options of inference-server (`--help` prints them).
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace serving {

struct ServerOptions {
  std::string model_repository;
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
  int repository_poll_ms = 2000;
  std::string default_model;
  double grace_period_s = 30;
  double shutdown_delay_s = 0;
  std::string log_level = "info";
  std::string log_format = "json";
  double access_log_sample_rate = 1.0;
  int ort_intra_op_threads = 0;  // 0: cores / instances
  int ort_inter_op_threads = 1;
  bool help = false;
};

StatusOr<ServerOptions> ParseOptions(int argc, char** argv);
std::string UsageText();

}  // namespace serving
