#include "observability/metrics_observer.h"

namespace serving {
namespace {

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// One model version's series.
class SeriesObserver final : public VersionObserver {
 public:
  explicit SeriesObserver(std::shared_ptr<Metrics::ModelSeries> series) : series_(std::move(series)) {}
  Metrics::ModelSeries& series() const { return *series_; }

  void Decoded(const InferRequest& r) override { series_->input_conversion->Observe(Seconds(r.decode_time)); }
  void Queued(const InferRequest&) override { series_->queue_depth->Increment(); }
  void LeftQueue(size_t count) override { series_->queue_depth->Decrement(static_cast<double>(count)); }
  void Started(const InferRequest& r) override { series_->queue_duration->Observe(Seconds(r.queue_time)); }

  void Executed(const ExecutionReport& e) override {
    series_->compute_duration->Observe(Seconds(e.executed - e.stacked));
    series_->executions->Increment();
    series_->rows->Increment(static_cast<double>(e.rows));
    series_->batch_size->Observe(static_cast<double>(e.rows));
    if (e.status.ok())
      series_->stats.RecordExecution(static_cast<size_t>(e.rows), e.stacked - e.start, e.executed - e.stacked,
                                     e.sliced - e.executed);
  }

  // Triton's statistics, every phase at once (a reader never sees a request half counted: perf_analyzer checks
  // that the compute counts agree). As in Triton, compute_output is the core's time from the model's outputs to
  // the reply handed over; the frontend's encoding is inference_conversion_duration_seconds{direction="output"}.
  void Succeeded(const InferRequest& r, const ExecutionReport& e, Clock::time_point now) override {
    series_->stats.RecordSuccess(r.decode_time, r.queue_time, e.executed - e.stacked, now - e.executed,
                                 now - r.received);
  }
  void Failed(const InferRequest& r, FailReason reason, Clock::time_point now) override {
    series_->stats.Fail(reason, now - r.received);
  }
  void Encoded(Clock::duration d) override { series_->output_conversion->Observe(Seconds(d)); }

  std::shared_ptr<const ModelStatistics> statistics() const override {
    return std::shared_ptr<const ModelStatistics>(series_, &series_->stats);
  }

 private:
  const std::shared_ptr<Metrics::ModelSeries> series_;  // its series leave /metrics with the last holder
};

}  // namespace

std::shared_ptr<VersionObserver> MetricsObserver::ForVersion(const ModelSettings& model, int64_t version) {
  return std::make_shared<SeriesObserver>(metrics_.ForModel(model.name, std::to_string(version)));
}

void MetricsObserver::Received(const InferRequest&) { metrics_.inflight().Increment(); }

void MetricsObserver::Finished(const RequestOutcome& outcome, VersionObserver* own) {
  metrics_.inflight().Decrement();
  const std::string code = StatusCodeName(outcome.status.code());
  if (own) {
    // `own` is what ForVersion above made for this request's version.
    Metrics::ModelSeries& series = static_cast<SeriesObserver*>(own)->series();
    metrics_.CountRequest(series, outcome.request.protocol, code);
    if (outcome.queued) series.request_duration->Observe(Seconds(outcome.finished - outcome.request.received));
    return;
  }
  metrics_.CountRequest(outcome.model.empty() ? "_unknown" : std::string(outcome.model),
                        outcome.model.empty() ? "" : std::to_string(outcome.version), outcome.request.protocol, code);
}

void MetricsObserver::ControlStarted(std::string_view, const std::string&) { metrics_.inflight().Increment(); }

void MetricsObserver::ControlFinished(std::string_view action, const std::string&, const Status& status) {
  metrics_.inflight().Decrement();
  metrics_.CountModelControl(std::string(action), StatusCodeName(status.code()));
}

}  // namespace serving
