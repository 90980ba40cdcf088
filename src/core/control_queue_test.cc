#include "core/control_queue.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <vector>

namespace serving {
namespace {

TEST(ControlQueue, RunsTasksInOrderOnItsOwnThread) {
  ControlQueue queue;
  std::vector<int> order;
  std::promise<std::thread::id> ran_on;
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(queue.Post([&order, i](bool dropped) {
      if (!dropped) order.push_back(i);
    }));
  ASSERT_TRUE(queue.Post([&ran_on](bool) { ran_on.set_value(std::this_thread::get_id()); }));
  auto id = ran_on.get_future();
  ASSERT_EQ(id.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_NE(id.get(), std::this_thread::get_id());
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(ControlQueue, IsBoundedAndStopDropsWhatWaits) {
  ControlQueue queue(2);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> started;
  ASSERT_TRUE(queue.Post([&started, released](bool) {
    started.set_value();
    (void)released.wait_for(std::chrono::seconds(10));
  }));
  ASSERT_EQ(started.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  int dropped = 0, ran = 0;
  auto count = [&](bool was_dropped) { ++(was_dropped ? dropped : ran); };
  EXPECT_TRUE(queue.Post(count));
  EXPECT_TRUE(queue.Post(count));
  EXPECT_FALSE(queue.Post(count));  // two already wait
  std::thread stopper([&queue] { queue.Stop(); });
  release.set_value();
  stopper.join();
  // The waiting two were either run before Stop took them or dropped; none is lost, none after Stop.
  EXPECT_EQ(dropped + ran, 2);
  EXPECT_FALSE(queue.Post(count));
}

}  // namespace
}  // namespace serving
