#include "observability/metrics.h"

namespace serving {
namespace {

// 50 µs to 10 s: covers a tiny tabular model's compute time and a badly queued request alike.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
      0.05,    0.1,    0.25,    0.5,    1.0,   2.5,    5.0,   10.0};
  return kBuckets;
}

const prometheus::Histogram::BucketBoundaries& BatchBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096};
  return kBuckets;
}

const char* const kStates[] = {"LOADING", "READY", "UNAVAILABLE", "FAILED"};

}  // namespace

Metrics::Metrics(const std::string& server_version) : registry_(std::make_shared<prometheus::Registry>()) {
  using namespace prometheus;
  requests_ = &BuildCounter().Name("inference_requests_total")
                   .Help("Inference requests finished, by model, version, protocol and status code")
                   .Register(*registry_);
  request_duration_ = &BuildHistogram().Name("inference_request_duration_seconds")
                           .Help("End-to-end inference latency in the server, from decode to reply")
                           .Register(*registry_);
  queue_duration_ = &BuildHistogram().Name("inference_queue_duration_seconds")
                         .Help("Time a request waited for a model instance")
                         .Register(*registry_);
  compute_duration_ = &BuildHistogram().Name("inference_compute_duration_seconds")
                           .Help("Time the backend spent executing a request")
                           .Register(*registry_);
  rows_ = &BuildCounter().Name("inference_rows_total")
               .Help("Inferences performed (rows / batch elements)")
               .Register(*registry_);
  executions_ = &BuildCounter().Name("inference_executions_total")
                     .Help("Model executions (batches run by the backend)")
                     .Register(*registry_);
  batch_size_ = &BuildHistogram().Name("inference_batch_size")
                     .Help("Rows per model execution")
                     .Register(*registry_);
  conversion_ = &BuildHistogram().Name("inference_conversion_duration_seconds")
                     .Help("Time spent decoding requests (direction=input) and encoding replies (direction=output)")
                     .Register(*registry_);
  queue_depth_ = &BuildGauge().Name("inference_queue_depth")
                      .Help("Requests waiting for a model instance")
                      .Register(*registry_);
  model_state_ = &BuildGauge().Name("inference_model_state")
                      .Help("1 for the state a model version is in (LOADING, READY, UNAVAILABLE, FAILED)")
                      .Register(*registry_);
  load_duration_ = &BuildGauge().Name("inference_model_load_duration_seconds")
                        .Help("How long the last load of a model version took")
                        .Register(*registry_);
  inflight_ = &BuildGauge().Name("inference_inflight_requests")
                   .Help("Inference requests accepted and not yet answered")
                   .Register(*registry_)
                   .Add({});
  auto& rejected = BuildCounter().Name("inference_transport_rejected_total")
                       .Help("Connections or messages the transport refused before any request reached the core, "
                             "by protocol and reason")
                       .Register(*registry_);
  transport_ = TransportSeries{
      &BuildGauge().Name("inference_http_connections").Help("Open HTTP connections").Register(*registry_).Add({}),
      &rejected.Add({{"protocol", "http"}, {"reason", "connection_limit"}}),
      &rejected.Add({{"protocol", "http"}, {"reason", "request_timeout"}}),
      &rejected.Add({{"protocol", "http"}, {"reason", "accept_error"}}),
      &rejected.Add({{"protocol", "http"}, {"reason", "malformed"}}),
      &rejected.Add({{"protocol", "http"}, {"reason", "overloaded"}}),
      &rejected.Add({{"protocol", "grpc"}, {"reason", "malformed"}})};
  BuildGauge().Name("inference_server_build_info").Help("Build information; always 1")
      .Register(*registry_).Add({{"version", server_version}}).Set(1);
}

Metrics::ModelSeries* Metrics::ForModel(const std::string& model, const std::string& version) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = series_[model + '\0' + version];
  if (!slot) {
    const prometheus::Labels labels = {{"model", model}, {"version", version}};
    slot = std::make_unique<ModelSeries>(ModelSeries{
        &request_duration_->Add(labels, LatencyBuckets()), &queue_duration_->Add(labels, LatencyBuckets()),
        &compute_duration_->Add(labels, LatencyBuckets()), &rows_->Add(labels), &executions_->Add(labels),
        &batch_size_->Add(labels, BatchBuckets()),
        &conversion_->Add({{"model", model}, {"version", version}, {"direction", "input"}}, LatencyBuckets()),
        &conversion_->Add({{"model", model}, {"version", version}, {"direction", "output"}}, LatencyBuckets()),
        &queue_depth_->Add(labels)});
  }
  return slot.get();
}

void Metrics::CountRequest(const std::string& model, const std::string& version, const std::string& protocol,
                           const std::string& code) {
  requests_->Add({{"model", model}, {"version", version}, {"protocol", protocol}, {"code", code}}).Increment();
}

void Metrics::SetModelState(const std::string& model, const std::string& version, const std::string& state) {
  for (const char* s : kStates)
    model_state_->Add({{"model", model}, {"version", version}, {"state", s}}).Set(state == s ? 1 : 0);
}

void Metrics::SetModelLoadDuration(const std::string& model, const std::string& version, double seconds) {
  load_duration_->Add({{"model", model}, {"version", version}}).Set(seconds);
}

}  // namespace serving
