#include "core/scheduler.h"

namespace serving {
namespace {
double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
}  // namespace

Scheduler::Scheduler(Model* model, std::shared_ptr<const ModelSettings> config, int64_t version,
                     Metrics::ModelSeries* series)
    : model_(model),
      config_(std::move(config)),
      version_(version),
      max_queue_(config_->max_queue_size),
      series_(series) {
  for (uint32_t i = 0; i < config_->instance_count; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& w : workers_) w.join();
}

Status Scheduler::Enqueue(Job&& job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() >= max_queue_)
      return ResourceExhausted("model '" + config_->name + "' queue is full (" + std::to_string(max_queue_) +
                               " requests waiting); retry later");
    job.enqueued = Clock::now();
    queue_.push_back(std::move(job));
  }
  if (series_) series_->queue_depth->Increment();
  cv_.notify_one();
  return Status::Ok();
}

size_t Scheduler::queue_depth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

void Scheduler::WorkerLoop() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    if (series_) series_->queue_depth->Decrement();
    Run(job);
  }
}

size_t RequestBatchSize(const InferRequest& request, int64_t max_batch_size) {
  if (max_batch_size <= 0 || request.inputs.empty() || request.inputs[0].shape.empty()) return 1;
  return static_cast<size_t>(request.inputs[0].shape[0]);
}

void Scheduler::Run(Job& job) {
  const auto start = Clock::now();
  if (series_) series_->queue_duration->Observe(Seconds(start - job.enqueued));
  const auto fail = [&](FailReason reason, Status status) {
    if (series_) series_->stats.Fail(reason, Clock::now() - job.request.received);
    job.done(std::move(status));
  };
  if (start > job.request.deadline)
    return fail(FailReason::kRejected,
                DeadlineExceeded("deadline passed while queued for model '" + config_->name + "'"));
  if (job.request.cancelled && job.request.cancelled->load())
    return fail(FailReason::kCanceled,
                Cancelled("the client went away while the request was queued for model '" + config_->name + "'"));
  InferResponse response;
  Status s = model_->Execute(job.request.inputs, job.request.requested_outputs, &response.outputs);
  const auto executed = Clock::now();
  if (series_) {
    const int64_t rows =
        job.request.inputs.empty() || job.request.inputs[0].shape.empty() ? 1 : job.request.inputs[0].shape[0];
    series_->compute_duration->Observe(Seconds(executed - start));
    series_->executions->Increment();
    series_->rows->Increment(static_cast<double>(rows));
    series_->batch_size->Observe(static_cast<double>(rows));
  }
  if (!s.ok()) return fail(FailReason::kBackend, std::move(s));
  response.id = job.request.id;
  response.model = config_->name;
  response.version = version_;
  response.config = config_;
  // Triton's statistics, every phase at once just before the reply is handed back: a reader never sees a
  // request half counted (perf_analyzer checks that the compute counts agree) and a client that has its
  // reply finds it counted. As in Triton, compute_output is the core's time from the model's outputs to the
  // reply handed over; the frontend's encoding is inference_conversion_duration_seconds{direction="output"}.
  if (series_) {
    const auto now = Clock::now();
    series_->stats.RecordSuccess(RequestBatchSize(job.request, config_->max_batch_size), job.request.decode_time,
                                 start - job.enqueued, executed - start, now - executed, now - job.request.received);
  }
  job.done(std::move(response));
}

}  // namespace serving
