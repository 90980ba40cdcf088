#include "observability/process_metrics.h"

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace serving {
namespace {

prometheus::MetricFamily Family(const char* name, const char* help, prometheus::MetricType type, double value) {
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter)
    m.counter.value = value;
  else
    m.gauge.value = value;
  return prometheus::MetricFamily{name, help, type, {m}};
}

double BootTimeSeconds() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime") {
      in >> value;
      return value;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

}  // namespace

std::vector<prometheus::MetricFamily> ProcessMetrics::Collect() const {
  std::vector<prometheus::MetricFamily> out;
  std::ifstream in("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name (which is in parentheses and may hold spaces): field 3 onwards.
  auto close = stat.rfind(')');
  if (close != std::string::npos) {
    std::istringstream fields(stat.substr(close + 2));
    std::string f;
    double utime = 0, stime = 0, starttime = 0, rss_pages = 0;
    for (int i = 3; fields >> f; ++i) {
      if (i == 14) utime = std::stod(f);
      if (i == 15) stime = std::stod(f);
      if (i == 22) starttime = std::stod(f);
      if (i == 24) {
        rss_pages = std::stod(f);
        break;
      }
    }
    const auto ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    out.push_back(Family("process_cpu_seconds_total", "User and system CPU time spent in seconds",
                         prometheus::MetricType::Counter, (utime + stime) / ticks));
    out.push_back(Family("process_start_time_seconds", "Start time of the process since the Unix epoch in seconds",
                         prometheus::MetricType::Gauge, BootTimeSeconds() + starttime / ticks));
    out.push_back(Family("process_resident_memory_bytes", "Resident memory size in bytes",
                         prometheus::MetricType::Gauge, rss_pages * static_cast<double>(sysconf(_SC_PAGESIZE))));
  }
  std::error_code ec;
  double fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++fds;
  out.push_back(Family("process_open_fds", "Number of open file descriptors", prometheus::MetricType::Gauge, fds));
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0)
    out.push_back(Family("process_max_fds", "Maximum number of open file descriptors", prometheus::MetricType::Gauge,
                         static_cast<double>(limit.rlim_cur)));
  return out;
}

}  // namespace serving
