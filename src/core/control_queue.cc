#include "core/control_queue.h"

namespace serving {

ControlQueue::ControlQueue(size_t max_pending) : max_pending_(max_pending), thread_([this] { Run(); }) {}

ControlQueue::~ControlQueue() { Stop(); }

bool ControlQueue::Post(Task task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || tasks_.size() >= max_pending_) return false;
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
  return true;
}

void ControlQueue::Stop() {
  std::deque<Task> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    dropped.swap(tasks_);
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  for (auto& task : dropped) task(true);
}

void ControlQueue::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
    if (tasks_.empty()) return;  // stopping
    Task task = std::move(tasks_.front());
    tasks_.pop_front();
    lock.unlock();
    task(false);
    lock.lock();
  }
}

}  // namespace serving
