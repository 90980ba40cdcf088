#include "core/control_queue.h"

namespace serving {

ControlQueue::ControlQueue(size_t max_pending) : max_pending_(max_pending), thread_([this] { Run(); }) {}

ControlQueue::~ControlQueue() { Stop(); }

bool ControlQueue::Post(Task task) {
  {
    MutexLock lock(mu_);
    if (stopping_ || tasks_.size() >= max_pending_) return false;
    tasks_.push_back(std::move(task));
  }
  cv_.NotifyOne();
  return true;
}

void ControlQueue::Stop() {
  std::deque<Task> dropped;
  {
    MutexLock lock(mu_);
    stopping_ = true;
    dropped.swap(tasks_);
  }
  cv_.NotifyOne();
  if (thread_.joinable()) thread_.join();
  for (auto& task : dropped) task(true);
}

void ControlQueue::Run() {
  MutexLock lock(mu_);
  while (true) {
    cv_.Wait(mu_, [this]() REQUIRES(mu_) { return stopping_ || !tasks_.empty(); });
    if (tasks_.empty()) return;  // stopping
    Task task = std::move(tasks_.front());
    tasks_.pop_front();
    lock.Unlock();
    task(false);
    lock.Lock();
  }
}

}  // namespace serving
