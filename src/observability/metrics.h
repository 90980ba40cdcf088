// Prometheus metrics of the server (names and meanings: docs/metrics.md). Built on prometheus-cpp;
// the server exposes registry() on its metrics port. Thread-safe. Depends on nothing else in the project but the
// header-only core/mutex.h. Frontends see only its TransportMetrics face.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/mutex.h"
#include "observability/model_statistics.h"
#include "observability/security_metrics.h"
#include "observability/transport_metrics.h"

namespace serving {

class Metrics final : public TransportMetrics, public SecurityMetrics {
 public:
  // Per model version series, shared by the loaded copies of one model version (a reload overlaps the
  // copy it replaces); when the last holder lets go, every series labelled with that model version leaves
  // /metrics, its inference_requests_total included.
  struct ModelSeries {
    std::string model, version;  // the label values
    prometheus::Histogram* request_duration;
    prometheus::Histogram* queue_duration;
    prometheus::Histogram* compute_duration;
    prometheus::Counter* rows;
    prometheus::Counter* executions;
    prometheus::Histogram* batch_size;
    prometheus::Histogram* input_conversion;   // decode: wire format -> core request
    prometheus::Histogram* output_conversion;  // encode: core response -> wire format
    prometheus::Gauge* queue_depth;
    // Triton's statistics extension and nv_inference_* metrics read these (lock-free counters).
    ModelStatistics stats;
    // inference_requests_total{code="OK"} per protocol (kProtocols), found once: a look-up by labels builds
    // a label map and takes the family's lock, on every request otherwise.
    std::array<std::atomic<prometheus::Counter*>, 4> ok_requests{};
  };
  // The protocols whose successful requests have a cached counter; others are counted by their labels.
  static constexpr std::array<std::string_view, 4> kProtocols = {"grpc-v1", "grpc-v2", "http-v1", "http-v2"};

  // The transports' own protection against hostile or broken clients (docs/reliability.md).
  struct TransportSeries {
    prometheus::Gauge* http_connections;      // open HTTP connections
    prometheus::Counter* http_refused;        // closed at once: over --http-max-connections
    prometheus::Counter* http_timed_out;      // closed: no complete request within --http-request-timeout-s
    prometheus::Counter* http_accept_errors;  // accept() failed (e.g. EMFILE); accepting paused briefly
    prometheus::Counter* http_malformed;      // rejected before routing (duplicate Content-Length, ...)
    prometheus::Counter* http_overloaded;     // 503: the decode queue was full
    prometheus::Counter* grpc_malformed;      // gRPC messages that did not parse
    prometheus::Counter* http_tls_timed_out;  // no completed TLS handshake in time
    prometheus::Counter* http_tls_failed;     // a failed TLS handshake
    prometheus::Counter* grpc_tls_timed_out;
    prometheus::Counter* grpc_tls_failed;
  };

  explicit Metrics(const std::string& server_version);

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }
  // Triton's metric names (nv_inference_*, nv_model_load_duration_secs; docs/metrics.md), computed at
  // scrape time from the model versions' statistics: register it beside registry() (valid while this lives).
  std::shared_ptr<prometheus::Collectable> triton_names() const { return triton_names_; }
  std::vector<prometheus::MetricFamily> CollectTritonNames() const;

  std::shared_ptr<ModelSeries> ForModel(const std::string& model, const std::string& version);
  // The repository no longer lists this version: its state and load duration series go.
  void ForgetModelVersion(const std::string& model, const std::string& version);
  // One finished request. `code` is the status code name ("OK", "INVALID_ARGUMENT", ...).
  void CountRequest(const std::string& model, const std::string& version, const std::string& protocol,
                    const std::string& code);
  void CountRequest(ModelSeries& series, const std::string& protocol, const std::string& code);
  // state: LOADING, READY, UNAVAILABLE, FAILED. Sets 1 on that state's series, 0 on the others.
  void SetModelState(const std::string& model, const std::string& version, const std::string& state);
  // An explicit load/unload request (action "load" or "unload") and its status code name.
  void CountModelControl(const std::string& action, const std::string& code);
  // A repository poll whose listing failed; `reason` is the status code's name, lower case.
  void CountRepositoryError(const std::string& reason);
  // A model version downloaded from object storage: its bytes and how long it took.
  void CountDownload(uint64_t bytes, double seconds);
  void SetModelLoadDuration(const std::string& model, const std::string& version, double seconds);
  prometheus::Gauge& inflight() { return *inflight_; }
  void Count(TransportEvent event) override;
  void AddHttpConnections(int delta) override;
  void CountAuthFailure(std::string_view transport, std::string_view reason) override;
  void CountSecretReload(std::string_view secret, bool ok) override;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* request_duration_;
  prometheus::Family<prometheus::Histogram>* queue_duration_;
  prometheus::Family<prometheus::Histogram>* compute_duration_;
  prometheus::Family<prometheus::Counter>* rows_;
  prometheus::Family<prometheus::Counter>* executions_;
  prometheus::Family<prometheus::Histogram>* batch_size_;
  prometheus::Family<prometheus::Histogram>* conversion_;
  prometheus::Family<prometheus::Gauge>* queue_depth_;
  prometheus::Family<prometheus::Gauge>* model_state_;
  prometheus::Family<prometheus::Gauge>* load_duration_;
  prometheus::Family<prometheus::Counter>* model_control_;
  prometheus::Family<prometheus::Counter>* repository_errors_;
  prometheus::Counter* download_bytes_;
  prometheus::Histogram* download_duration_;
  prometheus::Family<prometheus::Counter>* auth_failures_;
  prometheus::Family<prometheus::Counter>* secret_reloads_;
  prometheus::Gauge* inflight_;
  TransportSeries transport_;

  mutable Mutex mu_;
  std::map<std::string, std::weak_ptr<ModelSeries>> series_ GUARDED_BY(mu_);  // key "model\0version"
  std::shared_ptr<prometheus::Collectable> triton_names_ = MakeTritonNames();

  std::shared_ptr<prometheus::Collectable> MakeTritonNames() const;

  void RemoveSeries(const std::string& model, const std::string& version, ModelSeries* series);
};

}  // namespace serving
