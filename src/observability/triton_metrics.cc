// Triton's metric names (docs/metrics.md), so dashboards and alerts written for Triton work unchanged.
// Computed at scrape time from each live model version's ModelStatistics and queue depth gauge: the
// request path only adds to atomics, and nothing here runs per request.
#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>

#include <utility>
#include <vector>

#include "observability/metrics.h"

namespace serving {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

double Load(const std::atomic<uint64_t>& v) { return static_cast<double>(v.load(std::memory_order_relaxed)); }
double Micros(const StatDuration& d) { return static_cast<double>(d.ns.load(std::memory_order_relaxed)) / 1e3; }

ClientMetric Sample(std::vector<ClientMetric::Label> labels, MetricType type, double value) {
  ClientMetric m;
  m.label = std::move(labels);
  if (type == MetricType::Counter)
    m.counter.value = value;
  else
    m.gauge.value = value;
  return m;
}

class TritonNames : public prometheus::Collectable {
 public:
  explicit TritonNames(const Metrics* metrics) : metrics_(metrics) {}
  std::vector<MetricFamily> Collect() const override { return metrics_->CollectTritonNames(); }

 private:
  const Metrics* const metrics_;
};

}  // namespace

std::shared_ptr<prometheus::Collectable> Metrics::MakeTritonNames() const {
  return std::make_shared<TritonNames>(this);
}

std::vector<MetricFamily> Metrics::CollectTritonNames() const {
  const auto counter = [](const char* name, const char* help) {
    return MetricFamily{name, help, MetricType::Counter, {}};
  };
  MetricFamily success = counter("nv_inference_request_success", "Number of successful inference requests");
  MetricFamily failure = counter("nv_inference_request_failure", "Number of failed inference requests, by reason");
  MetricFamily count = counter("nv_inference_count", "Number of inferences performed (batch elements)");
  MetricFamily exec = counter("nv_inference_exec_count", "Number of model executions");
  MetricFamily request_us =
      counter("nv_inference_request_duration_us", "Cumulative duration of successful inference requests, us");
  MetricFamily queue_us = counter("nv_inference_queue_duration_us", "Cumulative time requests waited in queue, us");
  MetricFamily input_us =
      counter("nv_inference_compute_input_duration_us", "Cumulative time decoding requests into tensors, us");
  MetricFamily infer_us = counter("nv_inference_compute_infer_duration_us", "Cumulative model execution time, us");
  MetricFamily output_us =
      counter("nv_inference_compute_output_duration_us", "Cumulative time from model outputs to replies, us");
  MetricFamily pending{
      "nv_inference_pending_request_count", "Requests waiting for a model instance", MetricType::Gauge, {}};
  {
    MutexLock lock(mu_);
    for (const auto& [key, weak] : series_) {
      const auto series = weak.lock();
      if (!series) continue;
      const size_t split = key.find('\0');
      const std::vector<ClientMetric::Label> labels = {{"model", key.substr(0, split)},
                                                       {"version", key.substr(split + 1)}};
      const ModelStatistics& s = series->stats;
      success.metric.push_back(Sample(labels, MetricType::Counter, Load(s.success.count)));
      for (size_t r = 0; r < kFailReasons; ++r) {
        auto with_reason = labels;
        with_reason.push_back({"reason", FailReasonName(static_cast<FailReason>(r))});
        failure.metric.push_back(Sample(with_reason, MetricType::Counter, Load(s.fail_by_reason[r])));
      }
      count.metric.push_back(Sample(labels, MetricType::Counter, Load(s.inference_count)));
      exec.metric.push_back(Sample(labels, MetricType::Counter, Load(s.execution_count)));
      request_us.metric.push_back(Sample(labels, MetricType::Counter, Micros(s.success)));
      queue_us.metric.push_back(Sample(labels, MetricType::Counter, Micros(s.queue)));
      input_us.metric.push_back(Sample(labels, MetricType::Counter, Micros(s.compute_input)));
      infer_us.metric.push_back(Sample(labels, MetricType::Counter, Micros(s.compute_infer)));
      output_us.metric.push_back(Sample(labels, MetricType::Counter, Micros(s.compute_output)));
      pending.metric.push_back(Sample(labels, MetricType::Gauge, series->queue_depth->Value()));
    }
  }
  std::vector<MetricFamily> out = {std::move(success),    std::move(failure),  std::move(count),    std::move(exec),
                                   std::move(request_us), std::move(queue_us), std::move(input_us), std::move(infer_us),
                                   std::move(output_us),  std::move(pending)};
  // The load durations the repository sets, under Triton's name.
  for (auto family : load_duration_->Collect()) {
    family.name = "nv_model_load_duration_secs";
    family.help = "Model load time in seconds";
    out.push_back(std::move(family));
  }
  return out;
}

}  // namespace serving
