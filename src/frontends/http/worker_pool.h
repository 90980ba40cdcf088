// WorkerPool: a few threads that run handlers which would otherwise hold an event loop (decoding a large
// JSON body takes milliseconds to seconds), so the loops stay free for health probes and small requests.
// Bounded: Submit() refuses work beyond `max_queued` tasks instead of queueing without limit.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>
#include "core/mutex.h"

namespace serving::frontends {

class WorkerPool {
 public:
  WorkerPool(int threads, size_t max_queued);
  // Shutdown().
  ~WorkerPool();

  // False (and `task` not run) when `max_queued` tasks are already waiting, or after Shutdown(). Thread-safe;
  // `task` runs on one of the pool's threads.
  bool Submit(std::function<void()> task);
  // Runs every task already queued, then joins the threads; later Submit() calls are refused. Idempotent.
  void Shutdown();

 private:
  void Work();

  const size_t max_queued_;
  Mutex mu_;
  CondVar cv_;
  std::deque<std::function<void()>> tasks_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace serving::frontends
