#include "core/scheduler.h"

#include <gtest/gtest.h>

#include <cstring>
#include <future>
#include <mutex>

#include "core/testing/fake_backend.h"

namespace serving {
namespace {

using namespace std::chrono_literals;

class SchedulerTest : public ::testing::Test {
 protected:
  // One instance, a queue of `max_queue`; the model blocks while the gate is closed.
  std::unique_ptr<Scheduler> Make(int max_queue = 16) {
    auto config = std::make_shared<ModelSettings>();
    config->name = "m";
    config->instance_count = 1;
    config->max_queue_size = static_cast<uint32_t>(max_queue);
    return std::make_unique<Scheduler>(&model_, config, 1, nullptr);
  }
  // A job whose one-row input carries `tag`; its result lands in `finished` in completion order.
  Scheduler::Job Job(float tag, Clock::time_point deadline = Clock::time_point::max()) {
    Scheduler::Job job;
    job.request.id = std::to_string(static_cast<int>(tag));
    job.request.deadline = deadline;
    const float x[2] = {tag, tag};
    std::vector<std::byte> bytes(sizeof(x));
    std::memcpy(bytes.data(), x, sizeof(x));
    job.request.inputs.push_back(Tensor::Owning("X", DataType::kFp32, {1, 2}, std::move(bytes)));
    job.done = [this, tag](const StatusOr<InferResponse>& r) {
      std::lock_guard<std::mutex> lock(mu_);
      finished_.emplace_back(tag, r.status());
    };
    return job;
  }
  void WaitExecuting() {
    while (gate_.waiting.load() == 0) std::this_thread::yield();
  }
  std::vector<std::pair<float, Status>> Finished() {
    std::lock_guard<std::mutex> lock(mu_);
    return finished_;
  }

  testing::Gate gate_;
  testing::FakeModel model_{&gate_};
  std::mutex mu_;
  std::vector<std::pair<float, Status>> finished_;
};

TEST_F(SchedulerTest, RunsQueuedRequestsInArrivalOrder) {
  auto scheduler = Make();
  gate_.Close();
  ASSERT_TRUE(scheduler->Enqueue(Job(0)).ok());
  WaitExecuting();
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(scheduler->Enqueue(Job(static_cast<float>(i))).ok());
  EXPECT_EQ(scheduler->queue_depth(), 5u);
  gate_.Open();
  scheduler.reset();  // drains
  auto done = Finished();
  ASSERT_EQ(done.size(), 6u);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(done[i].first, static_cast<float>(i));
    EXPECT_TRUE(done[i].second.ok()) << done[i].second.ToString();
  }
}

TEST_F(SchedulerTest, ARequestWhoseDeadlinePassedWhileQueuedIsNotRun) {
  auto scheduler = Make();
  gate_.Close();
  ASSERT_TRUE(scheduler->Enqueue(Job(0)).ok());
  WaitExecuting();
  ASSERT_TRUE(scheduler->Enqueue(Job(1, Clock::now() + 20ms)).ok());
  ASSERT_TRUE(scheduler->Enqueue(Job(2)).ok());
  std::this_thread::sleep_for(50ms);  // job 1's deadline passes while it waits behind job 0
  gate_.Open();
  scheduler.reset();
  auto done = Finished();
  ASSERT_EQ(done.size(), 3u);
  EXPECT_EQ(done[1].first, 1.0f);
  EXPECT_EQ(done[1].second.code(), StatusCode::kDeadlineExceeded) << done[1].second.ToString();
  EXPECT_TRUE(done[2].second.ok());
}

TEST_F(SchedulerTest, AFullQueueRefusesAndLeavesTheJobToTheCaller) {
  auto scheduler = Make(/*max_queue=*/1);
  gate_.Close();
  ASSERT_TRUE(scheduler->Enqueue(Job(0)).ok());
  WaitExecuting();
  ASSERT_TRUE(scheduler->Enqueue(Job(1)).ok());
  Scheduler::Job third = Job(2);
  const Status refused = scheduler->Enqueue(std::move(third));
  EXPECT_EQ(refused.code(), StatusCode::kResourceExhausted);
  // Enqueue takes an rvalue and promises not to move from a job it refuses.
  // NOLINTNEXTLINE(bugprone-use-after-move)
  EXPECT_TRUE(third.done) << "a refused job must stay with the caller, who answers it";
  gate_.Open();
  scheduler.reset();
  EXPECT_EQ(Finished().size(), 2u);
}

TEST_F(SchedulerTest, DestructionRunsEveryQueuedJob) {
  auto scheduler = Make();
  gate_.Close();
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(scheduler->Enqueue(Job(static_cast<float>(i))).ok());
  WaitExecuting();
  auto destroyed = std::async(std::launch::async, [&] { scheduler.reset(); });
  EXPECT_EQ(destroyed.wait_for(50ms), std::future_status::timeout) << "destroyed with jobs still queued";
  gate_.Open();
  destroyed.get();
  EXPECT_EQ(Finished().size(), 4u);
}

}  // namespace
}  // namespace serving
