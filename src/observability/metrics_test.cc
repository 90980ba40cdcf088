#include "observability/metrics.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace serving {
namespace {

// Whether /metrics would show a series of `family` labelled model="m", version=`version`.
bool Shows(const Metrics& metrics, const std::string& family, const std::string& version) {
  for (const auto& f : metrics.registry()->Collect()) {
    if (f.name != family) continue;
    for (const auto& metric : f.metric) {
      bool model = false, ver = false;
      for (const auto& l : metric.label) {
        model |= l.name == "model" && l.value == "m";
        ver |= l.name == "version" && l.value == version;
      }
      if (model && ver) return true;
    }
  }
  return false;
}

TEST(MetricsTest, AVersionsSeriesLiveAsLongAsItsLastLoadedCopy) {
  Metrics metrics("test");
  auto old_copy = metrics.ForModel("m", "1");
  metrics.CountRequest("m", "1", "grpc-v2", "OK");
  auto reloaded = metrics.ForModel("m", "1");  // a reload overlaps the copy it replaces: the same series
  EXPECT_EQ(old_copy.get(), reloaded.get());
  old_copy.reset();
  EXPECT_TRUE(Shows(metrics, "inference_requests_total", "1"));
  EXPECT_TRUE(Shows(metrics, "inference_request_duration_seconds", "1"));
  auto other = metrics.ForModel("m", "2");
  reloaded.reset();
  for (const char* family : {"inference_requests_total", "inference_request_duration_seconds", "inference_queue_depth",
                             "inference_conversion_duration_seconds"})
    EXPECT_FALSE(Shows(metrics, family, "1")) << family;
  EXPECT_TRUE(Shows(metrics, "inference_request_duration_seconds", "2"));
  auto again = metrics.ForModel("m", "1");  // loaded again later: fresh series
  EXPECT_TRUE(Shows(metrics, "inference_request_duration_seconds", "1"));
  EXPECT_FALSE(Shows(metrics, "inference_requests_total", "1"));
}

TEST(MetricsTest, ForgettingAVersionRemovesItsStateAndLoadDuration) {
  Metrics metrics("test");
  metrics.SetModelState("m", "3", "READY");
  metrics.SetModelLoadDuration("m", "3", 0.5);
  EXPECT_TRUE(Shows(metrics, "inference_model_state", "3"));
  metrics.ForgetModelVersion("m", "3");
  EXPECT_FALSE(Shows(metrics, "inference_model_state", "3"));
  EXPECT_FALSE(Shows(metrics, "inference_model_load_duration_seconds", "3"));
}

}  // namespace
}  // namespace serving

namespace serving {
namespace {

TEST(ModelStatisticsTest, BatchSlotsAreCreatedOnceAndOnlyForTrackedSizes) {
  ModelStatistics stats;
  EXPECT_EQ(stats.ForBatch(0), nullptr);
  EXPECT_EQ(stats.ForBatch(ModelStatistics::kMaxBatchTracked + 1), nullptr);
  EXPECT_EQ(stats.BatchIfAny(3), nullptr);
  std::vector<std::thread> threads;
  std::vector<ModelStatistics::Batch*> seen(8);
  threads.reserve(seen.size());
  for (auto& slot : seen)
    threads.emplace_back([&stats, &slot] {
      slot = stats.ForBatch(3);
      slot->compute_infer.Add(std::chrono::nanoseconds(5));
    });
  for (auto& t : threads) t.join();
  for (auto* b : seen) EXPECT_EQ(b, seen[0]);
  EXPECT_EQ(stats.BatchIfAny(3), seen[0]);
  EXPECT_EQ(stats.BatchIfAny(3)->compute_infer.count.load(), 8u);
  EXPECT_EQ(stats.BatchIfAny(3)->compute_infer.ns.load(), 40u);
}

}  // namespace
}  // namespace serving
