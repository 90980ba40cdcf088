// Standard Prometheus process metrics (process_cpu_seconds_total, process_resident_memory_bytes,
// process_open_fds, process_max_fds, process_start_time_seconds) read from /proc on each scrape.
// Written here because prometheus-cpp ships no process collector; the names follow the Prometheus
// client libraries' convention so existing dashboards work.
#pragma once

#include <prometheus/collectable.h>

#include <vector>

namespace serving {

class ProcessMetrics : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override;
};

}  // namespace serving
