// Scheduler: runs one model version's requests. A bounded FIFO queue feeds `instance_count` worker
// threads; each worker executes one request at a time on the (thread-safe) Model. Requests past their
// deadline when dequeued are failed with DEADLINE_EXCEEDED, and those whose client has gone with
// CANCELLED, instead of being run: neither occupies an instance.
//
// Threading: Enqueue() is called from frontend threads; Job::done runs on a worker thread.
// Destruction drains the queue (every queued job still runs) and joins the workers; it must not run on a
// worker thread (ModelRepository destroys versions from its own thread once nobody holds them).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/backend.h"
#include "core/infer_request.h"
#include "observability/metrics.h"

namespace serving {

// Triton's batch size of a request: its first dimension when the model batches (max_batch_size > 0), else 1.
size_t RequestBatchSize(const InferRequest& request, int64_t max_batch_size);

class Scheduler {
 public:
  struct Job {
    InferRequest request;
    std::function<void(StatusOr<InferResponse>)> done;
    Clock::time_point enqueued;  // set by Enqueue
  };

  // `series` (may be null) receives queue depth, queue/compute time, batch size and execution counts.
  Scheduler(Model* model, std::shared_ptr<const ModelSettings> config, int64_t version, Metrics::ModelSeries* series);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a job; RESOURCE_EXHAUSTED (and `job` untouched) when the queue is full.
  Status Enqueue(Job&& job);
  size_t queue_depth() const;

 private:
  void WorkerLoop();
  void Run(Job& job);

  Model* const model_;
  const std::shared_ptr<const ModelSettings> config_;
  const int64_t version_;
  const size_t max_queue_;
  Metrics::ModelSeries* const series_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;  // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::vector<std::thread> workers_;
};

}  // namespace serving
