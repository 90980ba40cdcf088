// Cumulative statistics of one model version in the shape of Triton's statistics extension (GET
// /v2/models/{m}/stats, gRPC ModelStatistics) and of its nv_inference_* metrics: counts and nanoseconds per
// phase, in total and per batch size. The request path only adds to relaxed atomics (no lock, no map
// look-up); readers (a stats request, a Prometheus scrape) take a consistent-enough snapshot.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

namespace serving {

struct StatDuration {
  std::atomic<uint64_t> count{0};
  std::atomic<uint64_t> ns{0};

  void Add(std::chrono::nanoseconds d) {
    count.fetch_add(1, std::memory_order_relaxed);
    ns.fetch_add(static_cast<uint64_t>(d.count() > 0 ? d.count() : 0), std::memory_order_relaxed);
  }
};

// Why a request failed, in the classes of Triton's nv_inference_request_failure{reason}.
enum class FailReason {
  kRejected,  // refused by the scheduler: queue full, deadline passed while queued
  kCanceled,  // the client went away
  kBackend,   // the model's execution failed
  kOther,     // everything else after the model was resolved (bad inputs, ...)
};
inline constexpr size_t kFailReasons = 4;
inline const char* FailReasonName(FailReason r) {
  static constexpr const char* kNames[kFailReasons] = {"REJECTED", "CANCELED", "BACKEND", "OTHER"};
  return kNames[static_cast<size_t>(r)];
}

class ModelStatistics {
 public:
  // Executions of batch sizes above this are in the totals only (Triton's per-batch list is for the sizes a
  // model's max_batch_size allows; 1024 covers the bundled models' limit).
  static constexpr size_t kMaxBatchTracked = 1024;

  struct Batch {
    StatDuration compute_input, compute_infer, compute_output;
  };

  ModelStatistics() = default;
  ~ModelStatistics() {
    for (auto& slot : batches_) delete slot.load(std::memory_order_acquire);
  }
  ModelStatistics(const ModelStatistics&) = delete;
  ModelStatistics& operator=(const ModelStatistics&) = delete;

  // Triton's meanings: a request that succeeded or failed (its whole time in the server), time waiting in the
  // queue, decoding the request into tensors, running the model, encoding the reply.
  StatDuration success, fail, queue, compute_input, compute_infer, compute_output;
  std::atomic<uint64_t> inference_count{0};    // rows (batch elements) inferred
  std::atomic<uint64_t> execution_count{0};    // model executions
  std::atomic<uint64_t> last_inference_ms{0};  // when the last execution finished, ms since the Unix epoch
  std::array<std::atomic<uint64_t>, kFailReasons> fail_by_reason{};

  // One model execution of `batch` elements (rows of one or more requests stacked by the dynamic batcher):
  // its time stacking inputs, running and slicing outputs, in the per-batch-size statistics.
  void RecordExecution(size_t batch, std::chrono::nanoseconds input, std::chrono::nanoseconds infer,
                       std::chrono::nanoseconds output) {
    if (Batch* b = ForBatch(batch)) {
      b->compute_input.Add(input);
      b->compute_infer.Add(infer);
      b->compute_output.Add(output);
    }
    execution_count.fetch_add(1, std::memory_order_relaxed);
    inference_count.fetch_add(batch, std::memory_order_relaxed);
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    last_inference_ms.store(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(now).count()),
                            std::memory_order_relaxed);
  }

  // One request that succeeded, every phase at once (see the scheduler for why). As in Triton, each request
  // of a batch is charged the whole execution's compute time.
  void RecordSuccess(std::chrono::nanoseconds input, std::chrono::nanoseconds queued, std::chrono::nanoseconds infer,
                     std::chrono::nanoseconds output, std::chrono::nanoseconds total) {
    compute_input.Add(input);
    queue.Add(queued);
    compute_infer.Add(infer);
    compute_output.Add(output);
    success.Add(total);
  }

  void Fail(FailReason reason, std::chrono::nanoseconds d) {
    fail.Add(d);
    fail_by_reason[static_cast<size_t>(reason)].fetch_add(1, std::memory_order_relaxed);
  }

  // The slot of one batch size, created on first use; nullptr beyond kMaxBatchTracked or for 0.
  Batch* ForBatch(size_t batch_size) {
    if (batch_size == 0 || batch_size > kMaxBatchTracked) return nullptr;
    auto& slot = batches_[batch_size];
    Batch* b = slot.load(std::memory_order_acquire);
    if (b) return b;
    auto fresh = std::make_unique<Batch>();
    if (slot.compare_exchange_strong(b, fresh.get(), std::memory_order_acq_rel)) return fresh.release();
    return b;  // another thread won
  }
  // Readers: the slot if that batch size has run, else nullptr.
  const Batch* BatchIfAny(size_t batch_size) const {
    return batch_size == 0 || batch_size > kMaxBatchTracked ? nullptr
                                                            : batches_[batch_size].load(std::memory_order_acquire);
  }

 private:
  std::array<std::atomic<Batch*>, kMaxBatchTracked + 1> batches_{};
};

}  // namespace serving
