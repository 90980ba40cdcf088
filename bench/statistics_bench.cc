// Per-request cost of the statistics behind Triton's statistics extension and nv_inference_* metrics
// (ModelStatistics::RecordExecution + RecordSuccess, an unbatched request: relaxed atomic adds, no lock),
// next to the per-request Prometheus work of the server (a histogram observation; the request counter, looked up by
// its labels as it was, and cached per model version as it is now). Run: make bench-statistics
// (results: docs/metrics.md#cost).
#include <benchmark/benchmark.h>

#include <chrono>

#include "observability/metrics.h"
#include "observability/model_statistics.h"

namespace serving {
namespace {

using std::chrono::nanoseconds;

// Shared by the threads of a multi-threaded run, as a model version's statistics are.
ModelStatistics& SharedStats() {
  static ModelStatistics stats;
  return stats;
}

void BM_RecordSuccess(benchmark::State& state) {
  ModelStatistics& stats = SharedStats();
  for (auto _ : state) {
    stats.RecordExecution(1, nanoseconds(0), nanoseconds(19000), nanoseconds(0));
    stats.RecordSuccess(nanoseconds(9000), nanoseconds(23000), nanoseconds(19000), nanoseconds(300),
                        nanoseconds(55000));
  }
}
BENCHMARK(BM_RecordSuccess)->Threads(1)->Threads(2)->UseRealTime();

Metrics& SharedMetrics() {
  static Metrics metrics("bench");
  return metrics;
}

void BM_HistogramObserve(benchmark::State& state) {
  static auto series = SharedMetrics().ForModel("m", "1");
  for (auto _ : state) series->compute_duration->Observe(19e-6);
}
BENCHMARK(BM_HistogramObserve)->Threads(1)->Threads(2)->UseRealTime();

void BM_CountRequest(benchmark::State& state) {
  for (auto _ : state) SharedMetrics().CountRequest("m", "1", "grpc-v2", "OK");
}
BENCHMARK(BM_CountRequest)->Threads(1)->Threads(2)->UseRealTime();

// What the request path does now: a successful request's counter, found once per model version and protocol.
void BM_CountRequestCached(benchmark::State& state) {
  static auto series = SharedMetrics().ForModel("m", "1");
  for (auto _ : state) SharedMetrics().CountRequest(*series, "grpc-v2", "OK");
}
BENCHMARK(BM_CountRequestCached)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
}  // namespace serving

BENCHMARK_MAIN();
