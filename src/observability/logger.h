// Structured logging: one event per line on stdout, JSON by default (stable keys: ts, level, msg, then
// the event's fields such as request_id, model, version, protocol, status, latency_us, trace_id), or
// `key=value` text for people. Thread-safe; each line is written with one fwrite under a mutex.
// Depends on nothing else in the project but the header-only core/mutex.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>
#include "core/mutex.h"

namespace serving::logging {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };
enum class Format { kJson, kText };

// Not thread-safe: call once at startup.
void Configure(Level level, Format format);
bool ParseLevel(std::string_view name, Level* level);
bool Enabled(Level level);

struct Field {
  using Value = std::variant<std::string_view, int64_t, double, bool>;
  Field(const char* k, std::string_view v) : key(k), value(v) {}
  Field(const char* k, const std::string& v) : key(k), value(std::string_view(v)) {}
  Field(const char* k, const char* v) : key(k), value(std::string_view(v)) {}
  Field(const char* k, int v) : key(k), value(static_cast<int64_t>(v)) {}
  Field(const char* k, long v) : key(k), value(static_cast<int64_t>(v)) {}
  Field(const char* k, long long v) : key(k), value(static_cast<int64_t>(v)) {}
  Field(const char* k, unsigned long v) : key(k), value(static_cast<int64_t>(v)) {}
  Field(const char* k, unsigned v) : key(k), value(static_cast<int64_t>(v)) {}
  Field(const char* k, double v) : key(k), value(v) {}
  Field(const char* k, bool v) : key(k), value(v) {}
  const char* key;
  Value value;
};

void Log(Level level, std::string_view msg, std::initializer_list<Field> fields = {});
// Now as RFC 3339 UTC with microseconds (2026-11-29T01:02:03.456789Z), as the log lines' `ts`.
std::string Timestamp();

inline void Debug(std::string_view msg, std::initializer_list<Field> f = {}) { Log(Level::kDebug, msg, f); }
inline void Info(std::string_view msg, std::initializer_list<Field> f = {}) { Log(Level::kInfo, msg, f); }
inline void Warn(std::string_view msg, std::initializer_list<Field> f = {}) { Log(Level::kWarn, msg, f); }
inline void Error(std::string_view msg, std::initializer_list<Field> f = {}) { Log(Level::kError, msg, f); }

// At most one warning a second for one kind of event, saying how many happened since the last one (for
// events a client can cause in bulk: refused connections, failed handshakes). Thread-safe.
class RateLimitedWarning {
 public:
  explicit RateLimitedWarning(const char* msg) : msg_(msg) {}
  void Hit(std::string_view detail = "");

 private:
  const char* msg_;
  Mutex mu_;
  std::chrono::steady_clock::time_point last_ GUARDED_BY(mu_){};
  int64_t count_ GUARDED_BY(mu_) = 0;
};

}  // namespace serving::logging
