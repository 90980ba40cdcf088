#include "observability/logger.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>

namespace serving::logging {
namespace {

Level g_level = Level::kInfo;
Format g_format = Format::kJson;
Mutex g_mu;

const char* LevelName(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

nlohmann::json ToJson(const Field::Value& v) {
  return std::visit(
      [](const auto& x) -> nlohmann::json {
        if constexpr (std::is_same_v<std::decay_t<decltype(x)>, std::string_view>)
          return std::string(x);
        else
          return x;
      },
      v);
}

}  // namespace

std::string Timestamp() {
  auto now = std::chrono::system_clock::now();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  auto secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%06lldZ", static_cast<long long>(us % 1000000));
  return buf;
}

void Configure(Level level, Format format) {
  g_level = level;
  g_format = format;
}

bool ParseLevel(std::string_view name, Level* level) {
  for (Level l : {Level::kDebug, Level::kInfo, Level::kWarn, Level::kError}) {
    if (name == LevelName(l)) {
      *level = l;
      return true;
    }
  }
  return false;
}

bool Enabled(Level level) { return level >= g_level; }

void Log(Level level, std::string_view msg, std::initializer_list<Field> fields) {
  if (!Enabled(level)) return;
  std::string line;
  if (g_format == Format::kJson) {
    // ordered_json keeps ts, level, msg first so lines read well; replace invalid UTF-8 instead of throwing.
    nlohmann::ordered_json j;
    j["ts"] = Timestamp();
    j["level"] = LevelName(level);
    j["msg"] = std::string(msg);
    for (const auto& f : fields) j[f.key] = ToJson(f.value);
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    line = Timestamp() + " " + LevelName(level) + " " + std::string(msg);
    for (const auto& f : fields)
      line += std::string(" ") + f.key + "=" +
              ToJson(f.value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  line += '\n';
  MutexLock lock(g_mu);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

void RateLimitedWarning::Hit(std::string_view detail) {
  MutexLock lock(mu_);
  ++count_;
  const auto now = std::chrono::steady_clock::now();
  if (last_ != std::chrono::steady_clock::time_point{} && now - last_ < std::chrono::seconds(1)) return;
  last_ = now;
  Warn(msg_, {{"events", count_}, {"detail", detail}});
  count_ = 0;
}

}  // namespace serving::logging
