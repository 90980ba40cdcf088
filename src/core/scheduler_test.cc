#include "core/scheduler.h"

#include <gtest/gtest.h>

#include <cstring>
#include <future>
#include <map>
#include <mutex>

#include <google/protobuf/text_format.h>

#include "core/testing/fake_backend.h"
#include "core/testing/wait.h"

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
  // A scheduler with Triton's `dynamic_batching { <batching> }` and max_batch_size `max_batch`.
  std::unique_ptr<Scheduler> MakeBatching(int64_t max_batch, const std::string& batching, uint32_t instances = 1) {
    auto config = std::make_shared<ModelSettings>();
    config->name = "m";
    config->instance_count = instances;
    config->max_batch_size = max_batch;
    config->config.set_max_batch_size(static_cast<int32_t>(max_batch));
    EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(batching, config->config.mutable_dynamic_batching()))
        << batching;
    return std::make_unique<Scheduler>(&model_, config, 1, nullptr);
  }
  // A job of `rows` rows; row i holds {tag + i/100, tag + i/100}. Its result lands in `finished` in
  // completion order, and its output is checked to be 2x its own input.
  Scheduler::Job Job(float tag, Clock::time_point deadline = Clock::time_point::max(), int64_t rows = 1,
                     int64_t columns = 2) {
    Scheduler::Job job;
    job.request.id = std::to_string(static_cast<int>(tag));
    job.request.deadline = deadline;
    std::vector<float> x;
    for (int64_t row = 0; row < rows; ++row)
      for (int64_t column = 0; column < columns; ++column) x.push_back(tag + static_cast<float>(row) / 100);
    std::vector<std::byte> bytes(x.size() * sizeof(float));
    std::memcpy(bytes.data(), x.data(), bytes.size());
    job.request.inputs.push_back(Tensor::Owning("X", DataType::kFp32, {rows, columns}, std::move(bytes)));
    job.request.requested_outputs = {"Y"};
    job.done = [this, tag, x, rows, columns](const StatusOr<InferResponse>& r) {
      if (r.ok()) {
        EXPECT_EQ(r->outputs.size(), 1u);
        EXPECT_EQ(r->outputs[0].shape, (Shape{rows, columns})) << "job " << tag;
        const auto* y = reinterpret_cast<const float*>(r->outputs[0].data);
        for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], 2 * x[i]) << "job " << tag << " element " << i;
      }
      std::lock_guard<std::mutex> lock(mu_);
      finished_.emplace_back(tag, r.status());
    };
    return job;
  }
  Scheduler::Job Rows(float tag, int64_t rows) { return Job(tag, Clock::time_point::max(), rows); }
  Scheduler::Job Priority(float tag, uint64_t priority) {
    Scheduler::Job job = Job(tag);
    job.request.priority = priority;
    return job;
  }
  std::vector<float> Order() {
    std::vector<float> tags;
    for (const auto& [tag, _] : Finished()) tags.push_back(tag);
    return tags;
  }
  void WaitFinished(size_t n) {
    const auto until = Clock::now() + 20s;
    while (Finished().size() < n && Clock::now() < until) std::this_thread::sleep_for(1ms);
    ASSERT_GE(Finished().size(), n) << "timed out";
  }
  void WaitExecuting() {
    ASSERT_TRUE(testing::WaitUntil([&] { return gate_.waiting.load() > 0; })) << "nothing executes";
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

// --- dynamic batching (Triton's dynamic_batching semantics) ---

TEST_F(SchedulerTest, BatchingWaitsAtMostTheMaxQueueDelayForMoreRows) {
  auto scheduler = MakeBatching(8, "max_queue_delay_microseconds: 100000");
  const auto start = Clock::now();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(scheduler->Enqueue(Job(static_cast<float>(i))).ok());
  WaitFinished(3);
  EXPECT_GE(Clock::now() - start, 100ms) << "ran before the oldest request had waited the delay";
  EXPECT_EQ(model_.batches(), (std::vector<int64_t>{3}));
}

TEST_F(SchedulerTest, AFullBatchRunsWithoutWaitingForTheDelay) {
  auto scheduler = MakeBatching(4, "max_queue_delay_microseconds: 60000000");  // a minute
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(scheduler->Enqueue(Job(static_cast<float>(i))).ok());
  WaitFinished(4);  // well within the minute
  EXPECT_EQ(model_.batches(), (std::vector<int64_t>{4}));
}

TEST_F(SchedulerTest, WithoutADelayWhatIsQueuedRunsAsOneBatch) {
  auto scheduler = MakeBatching(8, "");
  gate_.Close();
  ASSERT_TRUE(scheduler->Enqueue(Job(0)).ok());
  WaitExecuting();
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(scheduler->Enqueue(Job(static_cast<float>(i))).ok());
  gate_.Open();
  WaitFinished(6);
  EXPECT_EQ(model_.batches(), (std::vector<int64_t>{1, 5}));
  EXPECT_EQ(Order(), (std::vector<float>{0, 1, 2, 3, 4, 5}));
}

TEST_F(SchedulerTest, TheLargestPreferredBatchSizeThatCanBeFormedRunsAtOnce) {
  auto scheduler = MakeBatching(8, "preferred_batch_size: [2, 3] max_queue_delay_microseconds: 60000000");
  gate_.Close();
  ASSERT_TRUE(scheduler->Enqueue(Rows(0, 8)).ok());  // full: runs at once, holds the instance
  WaitExecuting();
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(scheduler->Enqueue(Job(static_cast<float>(i))).ok());
  gate_.Open();
  WaitFinished(6);  // 3, then the 2 left: both preferred, neither waits the minute
  EXPECT_EQ(model_.batches(), (std::vector<int64_t>{8, 3, 2}));
}

TEST_F(SchedulerTest, OutputsAreSplitBackToRequestsOfMixedSizes) {
  auto scheduler = MakeBatching(8, "max_queue_delay_microseconds: 60000000");
  gate_.Close();
  ASSERT_TRUE(scheduler->Enqueue(Rows(0, 8)).ok());
  WaitExecuting();
  ASSERT_TRUE(scheduler->Enqueue(Rows(1, 1)).ok());
  ASSERT_TRUE(scheduler->Enqueue(Rows(2, 3)).ok());
  ASSERT_TRUE(scheduler->Enqueue(Rows(3, 2)).ok());
  ASSERT_TRUE(scheduler->Enqueue(Rows(4, 2)).ok());  // 8 rows: full
  gate_.Open();
  WaitFinished(5);  // each job's callback checks its own rows came back
  EXPECT_EQ(model_.batches(), (std::vector<int64_t>{8, 8}));
  for (const auto& [tag, status] : Finished()) EXPECT_TRUE(status.ok()) << tag << ": " << status.ToString();
}

TEST_F(SchedulerTest, RequestsWhoseOtherDimensionsDifferAreNotMixed) {
  auto scheduler = MakeBatching(8, "max_queue_delay_microseconds: 60000000");
  gate_.Close();
  ASSERT_TRUE(scheduler->Enqueue(Rows(0, 8)).ok());
  WaitExecuting();
  ASSERT_TRUE(scheduler->Enqueue(Job(1)).ok());
  ASSERT_TRUE(scheduler->Enqueue(Job(2, Clock::time_point::max(), 1, 3)).ok());  // [1,3]: cannot join [1,2]
  ASSERT_TRUE(scheduler->Enqueue(Job(3)).ok());
  gate_.Open();
  WaitFinished(3);    // 1 runs alone at once (the next cannot join), then 2 alone
  scheduler.reset();  // 3 waits for company until the scheduler stops, then runs
  EXPECT_EQ(model_.batches(), (std::vector<int64_t>{8, 1, 1, 1}));
  EXPECT_EQ(Order(), (std::vector<float>{0, 1, 2, 3}));
}

TEST_F(SchedulerTest, HigherPriorityLevelsRunFirst) {
  auto scheduler = MakeBatching(1, "priority_levels: 2 default_priority_level: 2");
  gate_.Close();
  ASSERT_TRUE(scheduler->Enqueue(Job(0)).ok());
  WaitExecuting();
  ASSERT_TRUE(scheduler->Enqueue(Job(1)).ok());          // default: level 2
  ASSERT_TRUE(scheduler->Enqueue(Priority(2, 2)).ok());  // level 2
  ASSERT_TRUE(scheduler->Enqueue(Priority(3, 1)).ok());  // level 1
  gate_.Open();
  WaitFinished(4);
  EXPECT_EQ(Order(), (std::vector<float>{0, 3, 1, 2}));
}

TEST_F(SchedulerTest, APriorityOutsideTheLevelsIsRefused) {
  auto scheduler = MakeBatching(4, "priority_levels: 2 default_priority_level: 1");
  Scheduler::Job job = Priority(1, 3);
  const Status s = scheduler->Enqueue(std::move(job));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("priority 3"), std::string::npos) << s.ToString();
}

TEST_F(SchedulerTest, EachPriorityLevelHasItsOwnQueueBound) {
  auto scheduler =
      MakeBatching(1,
                   "priority_levels: 2 default_priority_level: 2 default_queue_policy { max_queue_size: 1 } "
                   "priority_queue_policy { key: 1 value { max_queue_size: 2 } }");
  gate_.Close();
  ASSERT_TRUE(scheduler->Enqueue(Job(0)).ok());
  WaitExecuting();
  ASSERT_TRUE(scheduler->Enqueue(Job(1)).ok());
  EXPECT_EQ(scheduler->Enqueue(Job(2)).code(), StatusCode::kResourceExhausted);
  ASSERT_TRUE(scheduler->Enqueue(Priority(3, 1)).ok());
  ASSERT_TRUE(scheduler->Enqueue(Priority(4, 1)).ok());
  EXPECT_EQ(scheduler->Enqueue(Priority(5, 1)).code(), StatusCode::kResourceExhausted);
  gate_.Open();
}

TEST_F(SchedulerTest, ARejectQueuePolicyFailsRequestsThatTimeOutWithoutRunningThem) {
  auto scheduler = MakeBatching(1, "default_queue_policy { default_timeout_microseconds: 20000 }");
  gate_.Close();
  ASSERT_TRUE(scheduler->Enqueue(Job(0)).ok());
  WaitExecuting();
  ASSERT_TRUE(scheduler->Enqueue(Job(1)).ok());
  std::this_thread::sleep_for(50ms);
  gate_.Open();
  WaitFinished(2);
  EXPECT_EQ(Finished()[1].second.code(), StatusCode::kDeadlineExceeded) << Finished()[1].second.ToString();
  EXPECT_EQ(model_.batches().size(), 1u) << "the timed-out request ran";
}

TEST_F(SchedulerTest, ADelayQueuePolicyRunsTimedOutRequestsAfterTheOthers) {
  auto scheduler =
      MakeBatching(1, "default_queue_policy { timeout_action: DELAY default_timeout_microseconds: 200000 }");
  gate_.Close();
  ASSERT_TRUE(scheduler->Enqueue(Job(0)).ok());
  WaitExecuting();
  ASSERT_TRUE(scheduler->Enqueue(Job(1)).ok());
  std::this_thread::sleep_for(300ms);  // 1 times out; 2 has 200 ms of margin, even under qemu
  ASSERT_TRUE(scheduler->Enqueue(Job(2)).ok());
  gate_.Open();
  WaitFinished(3);
  EXPECT_EQ(Order(), (std::vector<float>{0, 2, 1}));
  for (const auto& [tag, status] : Finished()) EXPECT_TRUE(status.ok()) << tag << ": " << status.ToString();
}

TEST_F(SchedulerTest, ARequestTimeoutShortensTheQueueTimeoutOnlyWhereThePolicyAllows) {
  for (const bool allow : {true, false}) {
    finished_.clear();
    auto scheduler = MakeBatching(1, std::string("default_queue_policy { default_timeout_microseconds: 60000000 ") +
                                         "allow_timeout_override: " + (allow ? "true" : "false") + " }");
    gate_.Close();
    ASSERT_TRUE(scheduler->Enqueue(Job(0)).ok());
    WaitExecuting();
    Scheduler::Job job = Job(1);
    job.request.timeout_us = 20000;
    ASSERT_TRUE(scheduler->Enqueue(std::move(job)).ok());
    std::this_thread::sleep_for(50ms);
    gate_.Open();
    WaitFinished(2);
    EXPECT_EQ(Finished()[1].second.code(), allow ? StatusCode::kDeadlineExceeded : StatusCode::kOk)
        << "allow_timeout_override " << allow;
  }
}

TEST_F(SchedulerTest, RequestsCancelledOrPastTheirDeadlineLeaveTheQueueWithoutRunning) {
  auto scheduler = MakeBatching(8, "max_queue_delay_microseconds: 60000000");
  gate_.Close();
  ASSERT_TRUE(scheduler->Enqueue(Rows(0, 8)).ok());
  WaitExecuting();
  auto gone = std::make_shared<std::atomic<bool>>(false);
  Scheduler::Job cancelled = Job(1);
  cancelled.request.cancelled = gone;
  ASSERT_TRUE(scheduler->Enqueue(std::move(cancelled)).ok());
  ASSERT_TRUE(scheduler->Enqueue(Job(2, Clock::now() + 20ms)).ok());
  ASSERT_TRUE(scheduler->Enqueue(Rows(3, 6)).ok());
  gone->store(true);
  std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(scheduler->Enqueue(Rows(4, 2)).ok());  // with 3: a full batch, once 1 and 2 have left
  gate_.Open();
  WaitFinished(5);
  std::map<float, StatusCode> codes;
  for (const auto& [tag, status] : Finished()) codes[tag] = status.code();
  EXPECT_EQ(codes[1], StatusCode::kCancelled);
  EXPECT_EQ(codes[2], StatusCode::kDeadlineExceeded);
  EXPECT_EQ(codes[3], StatusCode::kOk);
  EXPECT_EQ(codes[4], StatusCode::kOk);
  EXPECT_EQ(model_.batches(), (std::vector<int64_t>{8, 8}));
}

TEST_F(SchedulerTest, ARequestWhoseClientLeftWhileItRanIsAnsweredCancelledAndItsBatchMatesAreNot) {
  auto scheduler = MakeBatching(8, "max_queue_delay_microseconds: 60000000");
  gate_.Close();
  auto gone = std::make_shared<std::atomic<bool>>(false);
  Scheduler::Job leaving = Rows(0, 4);
  leaving.request.cancelled = gone;
  ASSERT_TRUE(scheduler->Enqueue(std::move(leaving)).ok());
  ASSERT_TRUE(scheduler->Enqueue(Rows(1, 4)).ok());  // a full batch with 0
  WaitExecuting();
  gone->store(true);  // during the run
  gate_.Open();
  WaitFinished(2);
  std::map<float, Status> by_tag;
  for (const auto& [tag, status] : Finished()) by_tag[tag] = status;
  EXPECT_EQ(by_tag[0].code(), StatusCode::kCancelled);
  EXPECT_NE(by_tag[0].message().find("while the request executed"), std::string::npos) << by_tag[0].message();
  EXPECT_EQ(by_tag[1].code(), StatusCode::kOk);
  EXPECT_EQ(model_.batches(), (std::vector<int64_t>{8}));
}

TEST_F(SchedulerTest, PreserveOrderingHandsRepliesBackInQueueOrder) {
  for (const bool preserve : {true, false}) {
    finished_.clear();
    model_.HoldOnly(0);  // only job 0 waits at the gate
    auto scheduler = MakeBatching(1, std::string("preserve_ordering: ") + (preserve ? "true" : "false"), 2);
    gate_.Close();
    ASSERT_TRUE(scheduler->Enqueue(Job(0)).ok());
    WaitExecuting();
    ASSERT_TRUE(scheduler->Enqueue(Job(1)).ok());  // runs on the other instance and finishes first
    ASSERT_TRUE(testing::WaitUntil([&] { return model_.batches().size() >= 2; }));
    std::this_thread::sleep_for(20ms);
    gate_.Open();
    WaitFinished(2);
    EXPECT_EQ(Order(), preserve ? (std::vector<float>{0, 1}) : (std::vector<float>{1, 0}))
        << "preserve_ordering " << preserve;
  }
}

// --- hand-off: a cheap request on a model without dynamic_batching runs on the calling thread ---

TEST_F(SchedulerTest, ACheapRequestRunsOnTheCallingThreadOnceTheModelIsTimed) {
  auto scheduler = Make();
  scheduler->set_inline_budget(1s);              // the fake model is cheap, even under qemu
  ASSERT_TRUE(scheduler->Enqueue(Job(0)).ok());  // not timed yet: a worker runs it
  WaitFinished(1);
  // The worker frees its instance just after answering (under qemu, once, only after the next Enqueue).
  ASSERT_TRUE(testing::WaitUntil([&] { return scheduler->busy_instances() == 0; }));
  ASSERT_TRUE(scheduler->Enqueue(Job(1)).ok());  // the queue is empty, the instance free, the model fast
  ASSERT_EQ(Finished().size(), 2u) << "answered before Enqueue returned";
  const auto threads = model_.threads();
  EXPECT_NE(threads[0], std::this_thread::get_id());
  EXPECT_EQ(threads[1], std::this_thread::get_id());
}

TEST_F(SchedulerTest, ASlowModelAlwaysRunsOnAWorker) {
  auto scheduler = Make();
  gate_.Close();
  ASSERT_TRUE(scheduler->Enqueue(Job(0)).ok());
  WaitExecuting();
  std::this_thread::sleep_for(Scheduler::kInlineBudget * 3);  // the first execution takes longer than the budget
  gate_.Open();
  WaitFinished(1);
  ASSERT_TRUE(scheduler->Enqueue(Job(1)).ok());
  WaitFinished(2);
  for (const auto& id : model_.threads()) EXPECT_NE(id, std::this_thread::get_id());
}

TEST_F(SchedulerTest, RequestsRunningOnCallersCountAgainstTheInstances) {
  auto scheduler = Make();
  scheduler->set_inline_budget(1s);
  ASSERT_TRUE(scheduler->Enqueue(Job(0)).ok());  // times the model
  WaitFinished(1);
  ASSERT_TRUE(
      testing::WaitUntil([&] { return scheduler->busy_instances() == 0; }));  // its worker has let the instance go
  model_.HoldOnly(1);
  gate_.Close();
  std::thread caller([&] { ASSERT_TRUE(scheduler->Enqueue(Job(1)).ok()); });  // runs on `caller`, held
  WaitExecuting();
  ASSERT_TRUE(scheduler->Enqueue(Job(2)).ok());  // the only instance is busy: queued, not run
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(model_.batches().size(), 2u) << "a worker ran a request while the caller held the only instance";
  gate_.Open();
  caller.join();
  WaitFinished(3);
  EXPECT_EQ(model_.max_running(), 1);
  EXPECT_EQ(Order(), (std::vector<float>{0, 1, 2}));
}

TEST_F(SchedulerTest, DynamicBatchingNeverRunsOnTheCallingThread) {
  auto scheduler = MakeBatching(8, "");
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(scheduler->Enqueue(Job(static_cast<float>(i))).ok());
    WaitFinished(static_cast<size_t>(i) + 1);
  }
  for (const auto& id : model_.threads()) EXPECT_NE(id, std::this_thread::get_id());
}

}  // namespace
}  // namespace serving
