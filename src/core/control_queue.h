// ControlQueue: one thread that runs model control work (repository load and unload requests) in arrival
// order, so no transport thread (an HTTP event loop, a gRPC callback thread) ever waits for a model to load;
// the reply is sent when the work finishes. Bounded: with `max_pending` tasks waiting, Post refuses.
// Thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace serving {

class ControlQueue {
 public:
  // Runs with `dropped` false on the control thread; with true when the queue stopped before running it
  // (the task then only answers its caller), on the thread that stopped it.
  using Task = std::function<void(bool dropped)>;

  explicit ControlQueue(size_t max_pending = 64);
  ~ControlQueue();  // Stop()

  // Queues `task`; false (and `task` is not called) when `max_pending` tasks wait or after Stop().
  bool Post(Task task);
  // Waits for the running task, drops the waiting ones and joins the thread; accepts nothing afterwards.
  void Stop();

 private:
  void Run();

  const size_t max_pending_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> tasks_;  // guarded by mu_
  bool stopping_ = false;   // guarded by mu_
  std::thread thread_;      // declared last: starts once the rest is built
};

}  // namespace serving
