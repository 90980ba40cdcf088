// A test double for Backend: "model files" are text. A file holding "bad" fails to load; otherwise the
// model has input X FP32 [-1,2] and output Y = 2*X, and blocks in Execute while `gate` is closed.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include "core/backend.h"

namespace serving::testing {

struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = true;
  std::atomic<int> waiting{0};
  void Close() {
    std::lock_guard<std::mutex> l(mu);
    open = false;
  }
  void Open() {
    {
      std::lock_guard<std::mutex> l(mu);
      open = true;
    }
    cv.notify_all();
  }
  void Pass() {
    std::unique_lock<std::mutex> l(mu);
    ++waiting;
    cv.wait(l, [this] { return open; });
    --waiting;
  }
};

class FakeModel : public Model {
 public:
  explicit FakeModel(Gate* gate) : gate_(gate) {
    sig_.inputs = {{"X", DataType::kFp32, {-1, 2}}};
    sig_.outputs = {{"Y", DataType::kFp32, {-1, 2}}};
  }
  const ModelSignature& signature() const override { return sig_; }
  // Only executions whose first value is `value` wait at the gate (all do by default).
  void HoldOnly(float value) { hold_only_ = value; }
  // The rows of each execution so far, in order.
  std::vector<int64_t> batches() {
    std::lock_guard<std::mutex> l(mu_);
    return batches_;
  }
  // The thread of each execution so far, in order.
  std::vector<std::thread::id> threads() {
    std::lock_guard<std::mutex> l(mu_);
    return threads_;
  }
  // The most executions that ever ran at once.
  int max_running() {
    std::lock_guard<std::mutex> l(mu_);
    return max_running_;
  }
  Status Execute(std::span<const Tensor> inputs, std::span<const std::string>, std::vector<Tensor>* out) override {
    const auto* x = reinterpret_cast<const float*>(inputs[0].data);
    {
      std::lock_guard<std::mutex> l(mu_);
      batches_.push_back(inputs[0].shape.empty() ? 1 : inputs[0].shape[0]);
      threads_.push_back(std::this_thread::get_id());
      max_running_ = std::max(max_running_, ++running_);
    }
    if (gate_ && (!hold_only_ || (inputs[0].byte_size >= 4 && x[0] == *hold_only_))) gate_->Pass();
    {
      std::lock_guard<std::mutex> l(mu_);
      --running_;
    }
    std::vector<std::byte> bytes(inputs[0].byte_size);
    auto* y = reinterpret_cast<float*>(bytes.data());
    for (size_t i = 0; i < inputs[0].byte_size / 4; ++i) y[i] = 2 * x[i];
    out->push_back(Tensor::Owning("Y", DataType::kFp32, inputs[0].shape, std::move(bytes)));
    return Status::Ok();
  }

 private:
  ModelSignature sig_;
  Gate* gate_;
  std::optional<float> hold_only_;
  std::mutex mu_;
  std::vector<int64_t> batches_;
  std::vector<std::thread::id> threads_;
  int running_ = 0, max_running_ = 0;
};

class FakeBackend : public Backend {
 public:
  explicit FakeBackend(Gate* gate = nullptr) : gate_(gate) {}
  std::string model_filename(const ModelSettings&, const std::filesystem::path&) const override { return "model.txt"; }
  StatusOr<std::unique_ptr<Model>> Load(const ModelSettings&, const std::filesystem::path& file) override {
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    if (!in || text.str() == "bad") return InvalidArgument("cannot parse " + file.string());
    return std::unique_ptr<Model>(std::make_unique<FakeModel>(gate_));
  }

 private:
  Gate* gate_;
};

}  // namespace serving::testing
