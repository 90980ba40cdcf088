// Scheduler: runs one model version's requests, with the semantics of Triton's dynamic batcher when the
// config has a `dynamic_batching` block (docs/model-repository.md#dynamic-batching).
//
// Queue: one FIFO per priority level (one level without priority_levels), each bounded by its queue policy's
// max_queue_size; a request whose queue timeout passes is answered DEADLINE_EXCEEDED (timeout_action REJECT)
// or moved behind the requests of its level that have not timed out (DELAY). `instance_count` worker
// threads take work in priority order.
//
// Batching: with dynamic_batching and max_batch_size > 0, a worker stacks the rows of consecutive requests
// whose non-batch dimensions agree into one execution of at most max_batch_size rows. It runs the batch at
// once when it reaches max_batch_size, when a prefix of it adds up to a preferred_batch_size (the largest
// such), when the next request cannot join, or when its oldest request has waited
// max_queue_delay_microseconds; otherwise it waits for more. Outputs are sliced back per request. Without
// dynamic_batching every request is its own execution, in arrival order.
//
// Hand-off: without dynamic_batching, a request that finds the queue empty and an instance free runs on the
// calling thread (the frontend's), sparing the wake-up of a worker, when the model's measured time for its
// rows is under kInlineBudget (a slow model never holds a frontend thread; until a worker has timed the
// model, every request goes through a worker).
//
// Requests past their deadline are failed with DEADLINE_EXCEEDED, and those whose client has gone with
// CANCELLED, instead of being run: neither occupies an instance. With preserve_ordering, replies are handed
// back in the order the requests were queued.
//
// Observers (core/request_observer.h) hear of each step: queued, left the queue, started, executed, succeeded or
// failed; the scheduler counts and times nothing itself.
//
// Threading: Enqueue() is called from frontend threads; Job::done runs on a worker thread.
// Destruction drains the queue (every queued job still runs) and joins the workers; it must not run on a
// worker thread (ModelRepository destroys versions from its own thread once nobody holds them).
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "core/backend.h"
#include "core/infer_request.h"
#include "core/mutex.h"
#include "core/request_observer.h"

namespace serving {

class Scheduler {
 public:
  struct Job {
    InferRequest request;
    std::function<void(StatusOr<InferResponse>)> done;  // on the worker (or caller) that ran or refused it
    // Set by Enqueue.
    Clock::time_point enqueued;
    Clock::time_point timeout_at = Clock::time_point::max();  // the queue policy's timeout
    size_t level = 0;                                         // priority level, 0 = highest
    uint64_t sequence = 0;                                    // arrival order, for preserve_ordering
  };

  // `observers` (null: nobody watches) must outlive the scheduler.
  Scheduler(Model* model, std::shared_ptr<const ModelSettings> config, int64_t version,
            const VersionObservers* observers);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a job, or runs it before returning (see Hand-off), taking it from `job`; refused, `job` is left as it
  // was for the caller to answer: RESOURCE_EXHAUSTED when its priority level's queue is full, INVALID_ARGUMENT
  // for a priority outside the model's levels.
  Status Enqueue(Job& job);
  Status Enqueue(Job&& job) { return Enqueue(job); }
  // The most a request's rows may take, by the model's measured time per row, to run on the calling thread.
  static constexpr std::chrono::microseconds kInlineBudget{100};
  // Tests under emulation, where every execution is slow, widen it.
  void set_inline_budget(std::chrono::nanoseconds budget) { inline_budget_ns_.store(budget.count()); }
  size_t queue_depth() const;
  // RESOURCE_EXHAUSTED, as Enqueue would answer, when every priority level's queue is full; else OK. A hint
  // taken before a request is parsed (the queue may change before it is enqueued).
  Status Room() const;
  // Instances executing now (a worker marks its instance free only after it has answered the batch).
  uint32_t busy_instances() const;

 private:
  struct Policy {
    size_t max_size = 0;
    std::chrono::microseconds timeout{0};  // 0: none
    bool allow_override = false;
    bool delay = false;  // timeout_action DELAY (else REJECT)
  };
  // The level's queues and size are guarded by the scheduler's mu_ (not expressible on a nested type's
  // fields: the functions that touch them REQUIRE(mu_)); the policy is fixed at construction.
  struct Level {
    Policy policy;
    std::deque<Job> queue, delayed;  // delayed: timed out under DELAY
    size_t size = 0;                 // queued, forming included
  };
  Status QueueFull(size_t bound) const;
  struct Failed {
    Job job;
    Status status;
    FailReason reason;
  };

  void WorkerLoop() EXCLUDES(mu_);
  // Waits (mu_ held, released while waiting) until there is work, then fills `batch` (jobs to run) and
  // `failed` (jobs to answer with an error); true when the scheduler is stopping and empty.
  bool NextWork(std::vector<Job>* batch, std::vector<Failed>* failed) REQUIRES(mu_);
  // Moves timed-out and expired jobs out of the queues; recomputes next_expiry_.
  void Expire(Clock::time_point now, std::vector<Failed>* failed) REQUIRES(mu_);
  // Moves queued jobs into forming_ while they fit; returns whether the next one cannot join.
  bool Extend() REQUIRES(mu_);
  // How many of forming_'s jobs to run now (0: wait for more).
  size_t Ready(Clock::time_point now, bool blocked) const REQUIRES(mu_);
  Job* Front() REQUIRES(mu_);
  void PopFront() REQUIRES(mu_);
  // Why a job must not run (deadline, client gone, queue timeout); OK when it may.
  Status Doomed(const Job& job, Clock::time_point now, FailReason* reason) const;
  // One execution of `batch`, in steps: Runnable, Execute, Split, Reply.
  void Run(std::vector<Job>& batch) EXCLUDES(mu_);
  // One model execution: its inputs' jobs, its outputs and when each step ended (`report`, for observers).
  struct Execution {
    std::vector<Job*> jobs;            // the jobs that run (the batch less those that must not)
    std::vector<std::string> outputs;  // every output any of them asked for
    std::vector<Tensor> results;       // one per output
    ExecutionReport report;
  };
  // The batch's jobs that may run (the others are answered here); observes each one's queue wait.
  std::vector<Job*> Runnable(std::vector<Job>& batch, Clock::time_point start);
  // Stacks the jobs' inputs (a lone job runs on its own tensors), runs the model and times it.
  void Execute(Execution& e);
  // Each job's outputs: its rows of the ones it asked for, in its order.
  StatusOr<std::vector<InferResponse>> Split(Execution& e) const;
  // Completes each job with its response, after the observers have heard of its success.
  void Reply(Execution& e, std::vector<InferResponse>& responses);
  // Whether `rows` rows of this model are known to take less than kInlineBudget.
  bool Cheap(int64_t rows) const;
  void Fail(Job& job, Status status, FailReason reason);
  // Hands a reply back, in queue order with preserve_ordering.
  void Complete(Job& job, StatusOr<InferResponse> result) EXCLUDES(order_mu_);

  Model* const model_;
  const std::shared_ptr<const ModelSettings> config_;
  const int64_t version_;
  const VersionObservers* const observers_;
  const bool batching_;  // dynamic_batching with max_batch_size > 0
  const int64_t max_rows_;
  const std::vector<int64_t> preferred_;  // descending
  const std::chrono::microseconds max_delay_;
  const bool preserve_ordering_;
  const bool hand_off_;  // no dynamic_batching: requests may run on the calling thread
  size_t default_level_ = 0;
  std::atomic<int64_t> row_ns_{-1};  // a moving average of execution time per row; -1 until measured
  std::atomic<int64_t> inline_budget_ns_{std::chrono::nanoseconds(kInlineBudget).count()};

  mutable Mutex mu_;
  CondVar cv_;
  std::vector<Level> levels_;                // sized at construction (never resized); each level's queues: see Level
  std::deque<Job> forming_ GUARDED_BY(mu_);  // the batch being formed
  int64_t forming_rows_ GUARDED_BY(mu_) = 0;
  Clock::time_point next_expiry_ GUARDED_BY(mu_) = Clock::time_point::max();
  uint64_t next_sequence_ GUARDED_BY(mu_) = 0;
  bool stopping_ GUARDED_BY(mu_) = false;
  uint32_t busy_ GUARDED_BY(mu_) = 0;  // instances executing (workers and callers)

  Mutex order_mu_;
  std::map<uint64_t, std::function<void()>> parked_ GUARDED_BY(order_mu_);  // replies waiting for earlier ones
  uint64_t next_delivery_ GUARDED_BY(order_mu_) = 0;
  bool delivering_ GUARDED_BY(order_mu_) = false;

  std::vector<std::thread> workers_;
};

}  // namespace serving
