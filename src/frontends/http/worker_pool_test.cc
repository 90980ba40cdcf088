#include "frontends/http/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

namespace serving::frontends {
namespace {

TEST(WorkerPoolTest, RunsEveryQueuedTaskBeforeItIsDestroyed) {
  std::atomic<int> ran{0};
  {
    WorkerPool pool(2, 100);
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(pool.Submit([&] { ran++; }));
  }
  EXPECT_EQ(ran.load(), 50);
}

TEST(WorkerPoolTest, RefusesWorkBeyondItsQueueLimit) {
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::promise<void> started;
  WorkerPool pool(1, 1);
  ASSERT_TRUE(pool.Submit([&] {
    started.set_value();
    gate.wait();
  }));
  started.get_future().wait();       // the only thread is busy
  EXPECT_TRUE(pool.Submit([] {}));   // one may wait
  EXPECT_FALSE(pool.Submit([] {}));  // the second may not
  release.set_value();
}

TEST(WorkerPoolTest, RefusesWorkAfterShutdownInsteadOfLosingIt) {
  WorkerPool pool(1, 10);
  std::atomic<int> ran{0};
  ASSERT_TRUE(pool.Submit([&] { ran++; }));
  pool.Shutdown();
  EXPECT_EQ(ran.load(), 1);
  EXPECT_FALSE(pool.Submit([&] { ran++; }));  // the caller answers it (503) instead
  pool.Shutdown();                            // idempotent
  EXPECT_EQ(ran.load(), 1);
}

}  // namespace
}  // namespace serving::frontends
