// Waiting in tests without hanging: a condition that does not come true within the deadline fails the test
// (ASSERT_TRUE(WaitUntil(...))) instead of spinning forever.
#pragma once

#include <chrono>
#include <thread>

namespace serving::testing {

template <typename Predicate>
bool WaitUntil(Predicate done, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  return true;
}

}  // namespace serving::testing
