#include "observability/metrics.h"

#include <algorithm>

namespace serving {
namespace {

// 50 µs to 10 s: covers a tiny tabular model's compute time and a badly queued request alike.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0};
  return kBuckets;
}

const prometheus::Histogram::BucketBoundaries& BatchBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096};
  return kBuckets;
}

const char* const kStates[] = {"LOADING", "READY", "UNAVAILABLE", "FAILED"};

}  // namespace

namespace {

// One metric family, registered with its name and help.
template <typename Builder>
auto* Family(Builder builder, const char* name, const char* help, prometheus::Registry& registry) {
  return &builder.Name(name).Help(help).Register(registry);
}

// The transports' series: open HTTP connections and every refusal before a request reaches the core.
Metrics::TransportSeries TransportFamilies(prometheus::Registry& r) {
  using prometheus::BuildCounter, prometheus::BuildGauge;
  auto& rejected = *Family(BuildCounter(), "inference_transport_rejected_total",
                           "Connections or messages the transport refused before any request reached the core, "
                           "by protocol and reason",
                           r);
  const auto refused = [&rejected](const char* protocol, const char* reason) {
    return &rejected.Add({{"protocol", protocol}, {"reason", reason}});
  };
  return Metrics::TransportSeries{
      &Family(BuildGauge(), "inference_http_connections", "Open HTTP connections", r)->Add({}),
      refused("http", "connection_limit"),
      refused("http", "request_timeout"),
      refused("http", "accept_error"),
      refused("http", "malformed"),
      refused("http", "overloaded"),
      refused("grpc", "malformed"),
      refused("http", "tls_handshake_timeout"),
      refused("http", "tls_handshake_failed"),
      refused("grpc", "tls_handshake_timeout"),
      refused("grpc", "tls_handshake_failed")};
}

}  // namespace

Metrics::Metrics(const std::string& server_version) : registry_(std::make_shared<prometheus::Registry>()) {
  using prometheus::BuildCounter, prometheus::BuildGauge, prometheus::BuildHistogram;
  prometheus::Registry& r = *registry_;
  // Requests and their phases (per model version: ModelSeries).
  requests_ = Family(BuildCounter(), "inference_requests_total",
                     "Inference requests finished, by model, version, protocol and status code", r);
  request_duration_ = Family(BuildHistogram(), "inference_request_duration_seconds",
                             "Inference latency in the server, from the request received to its reply handed back", r);
  queue_duration_ =
      Family(BuildHistogram(), "inference_queue_duration_seconds", "Time a request waited for a model instance", r);
  compute_duration_ =
      Family(BuildHistogram(), "inference_compute_duration_seconds", "Time the backend spent executing a request", r);
  rows_ = Family(BuildCounter(), "inference_rows_total", "Inferences performed (rows / batch elements)", r);
  executions_ =
      Family(BuildCounter(), "inference_executions_total", "Model executions (batches run by the backend)", r);
  batch_size_ = Family(BuildHistogram(), "inference_batch_size", "Rows per model execution", r);
  conversion_ = Family(BuildHistogram(), "inference_conversion_duration_seconds",
                       "Time spent decoding requests (direction=input) and encoding replies (direction=output)", r);
  queue_depth_ = Family(BuildGauge(), "inference_queue_depth", "Requests waiting for a model instance", r);
  inflight_ =
      &Family(BuildGauge(), "inference_inflight_requests", "Inference requests accepted and not yet answered", r)
           ->Add({});
  // Models.
  model_state_ = Family(BuildGauge(), "inference_model_state",
                        "1 for the state a model version is in (LOADING, READY, UNAVAILABLE, FAILED)", r);
  load_duration_ = Family(BuildGauge(), "inference_model_load_duration_seconds",
                          "How long the last load of a model version took", r);
  model_control_ = Family(BuildCounter(), "inference_model_control_requests_total",
                          "Explicit model load/unload requests, by action and status code", r);
  repository_errors_ = Family(BuildCounter(), "inference_repository_poll_errors_total",
                              "Repository polls whose listing failed, by reason (the status code, lower case)", r);
  download_bytes_ = &Family(BuildCounter(), "inference_repository_download_bytes_total",
                            "Bytes of model versions downloaded from object storage", r)
                         ->Add({});
  download_duration_ = &Family(BuildHistogram(), "inference_repository_download_duration_seconds",
                               "How long downloading a model version from object storage took", r)
                            ->Add({}, prometheus::Histogram::BucketBoundaries{0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300});
  // Security.
  auth_failures_ = Family(BuildCounter(), "inference_auth_failures_total",
                          "Requests refused by authorization before any work, by transport and reason "
                          "(missing, malformed, invalid, expired, scope, restricted)",
                          r);
  secret_reloads_ = Family(BuildCounter(), "inference_secret_reloads_total",
                           "Tokens files and certificates re-read after they changed, by secret and result "
                           "(error: the previous one stays in force)",
                           r);
  transport_ = TransportFamilies(r);
  Family(BuildGauge(), "inference_server_build_info", "Build information; always 1", r)
      ->Add({{"version", server_version}})
      .Set(1);
}

std::shared_ptr<Metrics::ModelSeries> Metrics::ForModel(const std::string& model, const std::string& version) {
  MutexLock lock(mu_);
  auto& slot = series_[model + '\0' + version];
  if (auto existing = slot.lock()) return existing;
  const prometheus::Labels labels = {{"model", model}, {"version", version}};
  auto* series = new ModelSeries{
      model,
      version,
      &request_duration_->Add(labels, LatencyBuckets()),
      &queue_duration_->Add(labels, LatencyBuckets()),
      &compute_duration_->Add(labels, LatencyBuckets()),
      &rows_->Add(labels),
      &executions_->Add(labels),
      &batch_size_->Add(labels, BatchBuckets()),
      &conversion_->Add({{"model", model}, {"version", version}, {"direction", "input"}}, LatencyBuckets()),
      &conversion_->Add({{"model", model}, {"version", version}, {"direction", "output"}}, LatencyBuckets()),
      &queue_depth_->Add(labels),
      {},
      {}};
  std::shared_ptr<ModelSeries> shared(series,
                                      [this, model, version](ModelSeries* s) { RemoveSeries(model, version, s); });
  slot = shared;
  return shared;
}

void Metrics::RemoveSeries(const std::string& model, const std::string& version, ModelSeries* s) {
  std::unique_ptr<ModelSeries> owned(s);
  MutexLock lock(mu_);
  auto it = series_.find(model + '\0' + version);
  // A reload of the same version took these series over in between (ForModel found the slot expired and
  // added the same labels, which gave it these very metrics): they are its now, leave them.
  if (it != series_.end() && !it->second.expired()) return;
  if (it != series_.end()) series_.erase(it);
  request_duration_->Remove(s->request_duration);
  queue_duration_->Remove(s->queue_duration);
  compute_duration_->Remove(s->compute_duration);
  rows_->Remove(s->rows);
  executions_->Remove(s->executions);
  batch_size_->Remove(s->batch_size);
  conversion_->Remove(s->input_conversion);
  conversion_->Remove(s->output_conversion);
  queue_depth_->Remove(s->queue_depth);
  // The request counters were created per protocol and code as requests came: find them by their labels.
  for (const auto& family : requests_->Collect()) {
    for (const auto& metric : family.metric) {
      prometheus::Labels labels;
      for (const auto& l : metric.label) labels[l.name] = l.value;
      if (labels["model"] == model && labels["version"] == version) requests_->Remove(&requests_->Add(labels));
    }
  }
}

void Metrics::CountRepositoryError(const std::string& reason) {
  repository_errors_->Add({{"reason", reason}}).Increment();
}

void Metrics::CountDownload(uint64_t bytes, double seconds) {
  download_bytes_->Increment(static_cast<double>(bytes));
  download_duration_->Observe(seconds);
}

void Metrics::CountModelControl(const std::string& action, const std::string& code) {
  model_control_->Add({{"action", action}, {"code", code}}).Increment();
}

void Metrics::CountAuthFailure(std::string_view transport, std::string_view reason) {
  auth_failures_->Add({{"transport", std::string(transport)}, {"reason", std::string(reason)}}).Increment();
}

void Metrics::CountSecretReload(std::string_view secret, bool ok) {
  secret_reloads_->Add({{"secret", std::string(secret)}, {"result", ok ? "ok" : "error"}}).Increment();
}

void Metrics::ForgetModelVersion(const std::string& model, const std::string& version) {
  for (const char* state : kStates) {
    const prometheus::Labels labels = {{"model", model}, {"version", version}, {"state", state}};
    if (model_state_->Has(labels)) model_state_->Remove(&model_state_->Add(labels));
  }
  const prometheus::Labels labels = {{"model", model}, {"version", version}};
  if (load_duration_->Has(labels)) load_duration_->Remove(&load_duration_->Add(labels));
}

void Metrics::Count(TransportEvent event) {
  prometheus::Counter* counter = nullptr;
  switch (event) {
    case TransportEvent::kHttpRefused: counter = transport_.http_refused; break;
    case TransportEvent::kHttpTimedOut: counter = transport_.http_timed_out; break;
    case TransportEvent::kHttpAcceptError: counter = transport_.http_accept_errors; break;
    case TransportEvent::kHttpMalformed: counter = transport_.http_malformed; break;
    case TransportEvent::kHttpOverloaded: counter = transport_.http_overloaded; break;
    case TransportEvent::kGrpcMalformed: counter = transport_.grpc_malformed; break;
    case TransportEvent::kHttpTlsTimedOut: counter = transport_.http_tls_timed_out; break;
    case TransportEvent::kHttpTlsFailed: counter = transport_.http_tls_failed; break;
    case TransportEvent::kGrpcTlsTimedOut: counter = transport_.grpc_tls_timed_out; break;
    case TransportEvent::kGrpcTlsFailed: counter = transport_.grpc_tls_failed; break;
  }
  if (counter) counter->Increment();
}

void Metrics::AddHttpConnections(int delta) { transport_.http_connections->Increment(delta); }

void Metrics::CountRequest(const std::string& model, const std::string& version, const std::string& protocol,
                           const std::string& code) {
  requests_->Add({{"model", model}, {"version", version}, {"protocol", protocol}, {"code", code}}).Increment();
}

void Metrics::CountRequest(ModelSeries& series, const std::string& protocol, const std::string& code) {
  const auto known = std::find(kProtocols.begin(), kProtocols.end(), protocol);
  if (code != "OK" || known == kProtocols.end()) return CountRequest(series.model, series.version, protocol, code);
  std::atomic<prometheus::Counter*>& slot = series.ok_requests[known - kProtocols.begin()];
  prometheus::Counter* counter = slot.load(std::memory_order_acquire);
  if (!counter) {
    // Racing threads get the same counter from the family: whichever stores last stores the same pointer.
    counter =
        &requests_->Add({{"model", series.model}, {"version", series.version}, {"protocol", protocol}, {"code", code}});
    slot.store(counter, std::memory_order_release);
  }
  counter->Increment();
}

void Metrics::SetModelState(const std::string& model, const std::string& version, const std::string& state) {
  for (const char* s : kStates)
    model_state_->Add({{"model", model}, {"version", version}, {"state", s}}).Set(state == s ? 1 : 0);
}

void Metrics::SetModelLoadDuration(const std::string& model, const std::string& version, double seconds) {
  load_duration_->Add({{"model", model}, {"version", version}}).Set(seconds);
}

}  // namespace serving
