// ControlQueue: one thread that runs model control work (repository load and unload requests) in arrival
// order, so no transport thread (an HTTP event loop, a gRPC callback thread) ever waits for a model to load;
// the reply is sent when the work finishes. Bounded: with `max_pending` tasks waiting, Post refuses.
// Thread-safe; Stop() must not be called from a task (it joins the thread that runs them).
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>

#include "core/mutex.h"

namespace serving {

class ControlQueue {
 public:
  // Runs with `dropped` false on the control thread; with true when the queue stopped before running it
  // (the task then only answers its caller), on the thread that stopped it.
  using Task = std::function<void(bool dropped)>;

  explicit ControlQueue(size_t max_pending = 64);
  ~ControlQueue();  // Stop()

  // Queues `task`; false (and `task` is not called) when `max_pending` tasks wait or after Stop().
  bool Post(Task task) EXCLUDES(mu_);
  // Waits for the running task, drops the waiting ones and joins the thread; accepts nothing afterwards.
  void Stop() EXCLUDES(mu_);

 private:
  void Run() EXCLUDES(mu_);

  const size_t max_pending_;
  Mutex mu_;
  CondVar cv_;
  std::deque<Task> tasks_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  std::thread thread_;  // declared last: starts once the rest is built
};

}  // namespace serving
