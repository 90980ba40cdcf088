#include "core/scheduler.h"

#include <algorithm>
#include <span>

#include "core/batch.h"

namespace serving {
namespace {

// Config and request microseconds (uint64) as a duration that cannot overflow a time point.
std::chrono::microseconds Micros(uint64_t us) {
  constexpr uint64_t kTenYears = 10ull * 365 * 24 * 3600 * 1000000;
  return std::chrono::microseconds(static_cast<int64_t>(std::min(us, kTenYears)));
}

Clock::time_point Later(Clock::time_point t, std::chrono::microseconds d) {
  return d.count() <= 0 ? Clock::time_point::max() : t + d;
}

const VersionObservers& NoObservers() {
  static const VersionObservers none;
  return none;
}

std::vector<int64_t> PreferredSizes(const ModelSettings& s) {
  std::vector<int64_t> sizes(s.config.dynamic_batching().preferred_batch_size().begin(),
                             s.config.dynamic_batching().preferred_batch_size().end());
  std::sort(sizes.rbegin(), sizes.rend());
  return sizes;
}

}  // namespace

Scheduler::Scheduler(Model* model, std::shared_ptr<const ModelSettings> config, int64_t version,
                     const VersionObservers* observers)
    : model_(model),
      config_(std::move(config)),
      version_(version),
      observers_(observers ? observers : &NoObservers()),
      batching_(config_->config.has_dynamic_batching() && config_->max_batch_size > 0),
      max_rows_(config_->max_batch_size),
      preferred_(PreferredSizes(*config_)),
      max_delay_(Micros(config_->config.dynamic_batching().max_queue_delay_microseconds())),
      preserve_ordering_(config_->config.dynamic_batching().preserve_ordering()),
      hand_off_(!config_->config.has_dynamic_batching()) {
  const auto& b = config_->config.dynamic_batching();
  const auto policy = [](const config::ModelQueuePolicy& p, size_t fallback) {
    Policy out;
    out.max_size = p.max_queue_size() > 0 ? p.max_queue_size() : fallback;
    out.timeout = Micros(p.default_timeout_microseconds());
    out.allow_override = p.allow_timeout_override();
    out.delay = p.timeout_action() == config::ModelQueuePolicy::DELAY;
    return out;
  };
  const Policy base = policy(b.default_queue_policy(), config_->max_queue_size);
  levels_.resize(std::max<uint64_t>(1, b.priority_levels()));
  for (size_t i = 0; i < levels_.size(); ++i) {
    auto it = b.priority_queue_policy().find(i + 1);
    levels_[i].policy =
        it == b.priority_queue_policy().end() ? base : policy(it->second, ModelSettings{}.max_queue_size);
  }
  if (b.priority_levels() > 0) default_level_ = b.default_priority_level() - 1;
  for (uint32_t i = 0; i < config_->instance_count; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

Scheduler::~Scheduler() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  cv_.NotifyAll();
  for (auto& w : workers_) w.join();
}

Status Scheduler::Enqueue(Job& job) {
  size_t level = default_level_;
  const uint64_t priority = job.request.priority;
  if (priority != 0 && config_->config.dynamic_batching().priority_levels() > 0) {
    if (priority > levels_.size())
      return InvalidArgument("priority " + std::to_string(priority) + " is not a priority level of model '" +
                             config_->name + "' (1 is the highest, " + std::to_string(levels_.size()) +
                             " the lowest; 0 for the default)");
    level = priority - 1;
  }
  Level& l = levels_[level];
  // Triton's rule: a request may shorten its level's queue timeout when the policy allows it, never lengthen it.
  std::chrono::microseconds timeout = l.policy.timeout;
  const auto asked = Micros(job.request.timeout_us);
  if (l.policy.allow_override && asked.count() > 0 && (timeout.count() == 0 || asked < timeout)) timeout = asked;
  std::vector<Job> mine;  // the job, when it runs on this thread (see Hand-off)
  {
    MutexLock lock(mu_);
    if (l.size >= l.policy.max_size) return QueueFull(l.policy.max_size);
    job.enqueued = Clock::now();
    job.timeout_at = Later(job.enqueued, timeout);
    job.level = level;
    job.sequence = next_sequence_++;
    if (hand_off_ && !stopping_ && busy_ < config_->instance_count && forming_.empty() && l.queue.empty() &&
        Cheap(RequestRows(job.request))) {
      ++busy_;
      mine.push_back(std::move(job));
    } else {
      next_expiry_ = std::min({next_expiry_, job.timeout_at, job.request.deadline});
      observers_->Queued(job.request);  // before a worker can take it
      l.queue.push_back(std::move(job));
      ++l.size;
    }
  }
  if (!mine.empty()) {
    Run(mine);
    MutexLock lock(mu_);
    --busy_;
    cv_.NotifyOne();  // a worker may be waiting for this instance
    return Status::Ok();
  }
  cv_.NotifyOne();
  return Status::Ok();
}

Status Scheduler::QueueFull(size_t bound) const {
  return ResourceExhausted("model '" + config_->name + "' queue is full (" + std::to_string(bound) +
                           " requests waiting); retry later");
}

Status Scheduler::Room() const {
  MutexLock lock(mu_);
  for (const auto& l : levels_)
    if (l.size < l.policy.max_size) return Status::Ok();
  return QueueFull(levels_[default_level_].policy.max_size);
}

size_t Scheduler::queue_depth() const {
  MutexLock lock(mu_);
  size_t n = 0;
  for (const auto& l : levels_) n += l.size;
  return n;
}

uint32_t Scheduler::busy_instances() const {
  MutexLock lock(mu_);
  return busy_;
}

void Scheduler::WorkerLoop() {
  MutexLock lock(mu_);
  for (;;) {
    std::vector<Job> batch;
    std::vector<Failed> failed;
    const bool done = NextWork(&batch, &failed);
    // Under the lock, as Queued: a depth counted from the two never passes the queue's bound.
    if (const size_t taken = batch.size() + failed.size(); taken > 0) observers_->LeftQueue(taken);
    lock.Unlock();
    for (auto& f : failed) Fail(f.job, std::move(f.status), f.reason);
    if (!batch.empty()) Run(batch);
    if (done) return;
    lock.Lock();
    if (!batch.empty()) --busy_;
  }
}

bool Scheduler::NextWork(std::vector<Job>* batch, std::vector<Failed>* failed) {
  for (;;) {
    const auto now = Clock::now();
    if (now >= next_expiry_) Expire(now, failed);
    if (!failed->empty()) return false;  // answer those first, then come back
    const bool blocked = Extend();
    // Nothing to run, or no instance to run it on (callers hold them all): wait for news or the next expiry.
    if (forming_.empty() || busy_ >= config_->instance_count) {
      if (forming_.empty() && stopping_) return true;
      if (next_expiry_ == Clock::time_point::max()) {
        cv_.Wait(mu_);
      } else {
        cv_.WaitUntil(mu_, next_expiry_);
      }
      continue;
    }
    if (const size_t n = Ready(now, blocked); n > 0) {
      ++busy_;
      for (size_t i = 0; i < n; ++i) {
        Job& job = forming_.front();
        forming_rows_ -= RequestRows(job.request);
        --levels_[job.level].size;
        batch->push_back(std::move(job));
        forming_.pop_front();
      }
      if (!forming_.empty()) cv_.NotifyOne();  // what is left is another worker's to run
      return false;
    }
    Clock::time_point oldest = Clock::time_point::max();
    for (const auto& j : forming_) oldest = std::min(oldest, j.enqueued);
    cv_.WaitUntil(mu_, std::min(oldest + max_delay_, next_expiry_));
  }
}

void Scheduler::Expire(Clock::time_point now, std::vector<Failed>* failed) {
  next_expiry_ = Clock::time_point::max();
  for (auto& l : levels_) {
    std::deque<Job> queue, delayed;
    const auto keep = [&](Job& job, std::deque<Job>& to) REQUIRES(mu_) {
      next_expiry_ = std::min({next_expiry_, job.timeout_at, job.request.deadline});
      to.push_back(std::move(job));
    };
    for (auto* from : {&l.delayed, &l.queue}) {
      for (auto& job : *from) {
        FailReason reason{};
        if (Status why = Doomed(job, now, &reason); !why.ok()) {
          --l.size;
          failed->push_back({std::move(job), std::move(why), reason});
        } else if (job.timeout_at <= now) {
          // DELAY (REJECT failed above): behind every request of this level that has not timed out.
          job.timeout_at = Clock::time_point::max();
          keep(job, delayed);
        } else {
          keep(job, from == &l.queue ? queue : delayed);
        }
      }
    }
    l.queue = std::move(queue);
    l.delayed = std::move(delayed);
  }
}

Scheduler::Job* Scheduler::Front() {
  for (auto& l : levels_) {
    if (!l.queue.empty()) return &l.queue.front();
    if (!l.delayed.empty()) return &l.delayed.front();
  }
  return nullptr;
}

void Scheduler::PopFront() {
  for (auto& l : levels_) {
    if (!l.queue.empty()) return l.queue.pop_front();
    if (!l.delayed.empty()) return l.delayed.pop_front();
  }
}

bool Scheduler::Extend() {
  for (;;) {
    Job* next = Front();
    if (!next) return false;
    if (!forming_.empty() && (!batching_ || forming_rows_ + RequestRows(next->request) > max_rows_ ||
                              !Stackable(forming_.front().request, next->request)))
      return true;
    forming_rows_ += RequestRows(next->request);
    forming_.push_back(std::move(*next));
    PopFront();
  }
}

size_t Scheduler::Ready(Clock::time_point now, bool blocked) const {
  if (!batching_ || stopping_ || forming_rows_ >= max_rows_) return forming_.size();
  // The largest preferred size that a prefix of the batch adds up to.
  for (int64_t preferred : preferred_) {
    int64_t rows = 0;
    for (size_t i = 0; i < forming_.size() && rows < preferred; ++i) {
      rows += RequestRows(forming_[i].request);
      if (rows == preferred) return i + 1;
    }
  }
  if (blocked || max_delay_.count() == 0) return forming_.size();
  for (const auto& j : forming_)
    if (now >= j.enqueued + max_delay_) return forming_.size();
  return 0;
}

bool Scheduler::Cheap(int64_t rows) const {
  const int64_t per_row = row_ns_.load(std::memory_order_relaxed);
  return per_row >= 0 && per_row * rows < inline_budget_ns_.load(std::memory_order_relaxed);
}

Status Scheduler::Doomed(const Job& job, Clock::time_point now, FailReason* reason) const {
  *reason = FailReason::kRejected;
  if (now > job.request.deadline)
    return DeadlineExceeded("deadline passed while queued for model '" + config_->name + "'");
  if (now >= job.timeout_at && !levels_[job.level].policy.delay) {
    const auto waited = std::chrono::duration_cast<std::chrono::microseconds>(job.timeout_at - job.enqueued);
    return DeadlineExceeded("timed out after " + std::to_string(waited.count()) + " us in the queue of model '" +
                            config_->name + "' (its queue policy rejects requests that time out)");
  }
  if (job.request.cancelled && job.request.cancelled->load()) {
    *reason = FailReason::kCanceled;
    return Cancelled("the client went away while the request was queued for model '" + config_->name + "'");
  }
  return Status::Ok();
}

void Scheduler::Fail(Job& job, Status status, FailReason reason) {
  observers_->Failed(job.request, reason, Clock::now());
  Complete(job, std::move(status));
}

void Scheduler::Run(std::vector<Job>& batch) {
  Execution e;
  e.report.start = Clock::now();
  e.jobs = Runnable(batch, e.report.start);
  if (e.jobs.empty()) return;
  Execute(e);
  auto responses = e.report.status.ok() ? Split(e) : StatusOr<std::vector<InferResponse>>(e.report.status);
  e.report.sliced = Clock::now();
  e.report.status = responses.status();
  observers_->Executed(e.report);
  if (!responses.ok()) {
    for (Job* job : e.jobs) {
      if (observers_->wants_payload()) observers_->Payload(job->request, nullptr);
      Fail(*job, responses.status(), FailReason::kBackend);
    }
    return;
  }
  Reply(e, *responses);
}

std::vector<Scheduler::Job*> Scheduler::Runnable(std::vector<Job>& batch, Clock::time_point start) {
  // Jobs that must not run leave the batch here: they waited while it formed.
  std::vector<Job*> jobs;
  for (auto& job : batch) {
    job.request.queue_time = start - job.enqueued;
    observers_->Started(job.request);
    FailReason reason{};
    if (Status why = Doomed(job, start, &reason); !why.ok()) {
      Fail(job, std::move(why), reason);
      continue;
    }
    jobs.push_back(&job);
  }
  return jobs;
}

void Scheduler::Execute(Execution& e) {
  // A lone request runs on its own tensors; several are stacked, asking for every output any of them wants.
  ExecutionReport& r = e.report;
  r.batch.reserve(e.jobs.size());
  for (const Job* job : e.jobs) r.batch.push_back(&job->request);
  std::vector<Tensor> stacked;
  e.outputs = e.jobs.front()->request.requested_outputs;
  if (e.jobs.size() > 1) {
    stacked = StackInputs(r.batch);
    for (const Job* job : e.jobs)
      for (const auto& name : job->request.requested_outputs)
        if (std::find(e.outputs.begin(), e.outputs.end(), name) == e.outputs.end()) e.outputs.push_back(name);
  }
  const std::span<const Tensor> inputs = e.jobs.size() > 1 ? stacked : e.jobs.front()->request.inputs;
  r.requests = e.jobs.size();
  for (const Job* job : e.jobs) r.rows += RequestRows(job->request);
  r.stacked = Clock::now();
  r.status = model_->Execute(inputs, e.outputs, &e.results);
  r.executed = Clock::now();
  if (r.rows > 0) {
    const int64_t per_row =
        std::chrono::duration_cast<std::chrono::nanoseconds>(r.executed - r.stacked).count() / r.rows;
    const int64_t old = row_ns_.load(std::memory_order_relaxed);
    row_ns_.store(old < 0 ? per_row : (7 * old + per_row) / 8, std::memory_order_relaxed);
  }
}

StatusOr<std::vector<InferResponse>> Scheduler::Split(Execution& e) const {
  std::vector<InferResponse> responses(e.jobs.size());
  int64_t first = 0;
  for (size_t j = 0; j < e.jobs.size(); ++j) {
    const InferRequest& r = e.jobs[j]->request;
    const int64_t n = RequestRows(r);
    for (const auto& name : r.requested_outputs) {
      const size_t k = static_cast<size_t>(std::find(e.outputs.begin(), e.outputs.end(), name) - e.outputs.begin());
      if (e.jobs.size() == 1) {
        responses[j].outputs.push_back(std::move(e.results[k]));
        continue;
      }
      SERVING_ASSIGN_OR_RETURN(auto slice, SliceRows(e.results[k], first, n));
      responses[j].outputs.push_back(std::move(slice));
    }
    first += n;
  }
  return responses;
}

void Scheduler::Reply(Execution& e, std::vector<InferResponse>& responses) {
  for (size_t j = 0; j < e.jobs.size(); ++j) {
    Job& job = *e.jobs[j];
    InferResponse& response = responses[j];
    response.id = job.request.id;
    response.model = config_->name;
    response.version = version_;
    response.config = config_;
    // The client went away while its request executed (a model run cannot be stopped midway): the reply
    // would be dropped, so it is counted as what it is. Its execution stays counted with its batch.
    if (job.request.cancelled && job.request.cancelled->load()) {
      Fail(job,
           Cancelled("the client went away while the request executed on model '" + config_->name +
                     "'; its reply was dropped"),
           FailReason::kCanceled);
      continue;
    }
    if (observers_->wants_payload()) observers_->Payload(job.request, &response);
    // Just before the reply is handed back: a client that has its reply finds it counted.
    observers_->Succeeded(job.request, e.report, Clock::now());
    Complete(job, std::move(response));
  }
}

void Scheduler::Complete(Job& job, StatusOr<InferResponse> result) {
  if (!preserve_ordering_) return job.done(std::move(result));
  MutexLock lock(order_mu_);
  parked_.emplace(job.sequence, [done = std::move(job.done), r = std::move(result)]() mutable { done(std::move(r)); });
  if (delivering_) return;  // the thread delivering will get to it
  delivering_ = true;
  for (auto it = parked_.find(next_delivery_); it != parked_.end(); it = parked_.find(next_delivery_)) {
    auto deliver = std::move(it->second);
    parked_.erase(it);
    ++next_delivery_;
    lock.Unlock();
    deliver();
    lock.Lock();
  }
  delivering_ = false;
}

}  // namespace serving
