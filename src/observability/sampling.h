// Per-request sampling for the observers that keep a fraction of requests (the access log, payload logging).
#pragma once

#include <random>

namespace serving {

// True for about `rate` of the calls (always at 1, never at 0); each thread draws from its own generator.
inline bool Sampled(double rate) {
  if (rate >= 1.0) return true;
  if (rate <= 0.0) return false;
  thread_local std::mt19937 rng(std::random_device{}());
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng) < rate;
}

}  // namespace serving
