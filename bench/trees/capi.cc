// The tree engine behind a C interface, so bench/trees/run.py can time it from Python through ctypes in the
// same loop as LightGBM, XGBoost, treelite, lleaves and ONNX Runtime. A prediction is what the trees backend
// computes for an execution: the evaluator's margins, then the library's link (Forest::Transform).
#include <chrono>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>

#include "backends/trees/evaluator.h"
#include "backends/trees/model_file.h"

namespace {

struct Engine {
  explicit Engine(serving::trees::Forest f) : forest(std::move(f)), evaluator(forest) {}
  serving::trees::Forest forest;
  serving::trees::Evaluator evaluator;
  std::vector<double> margins;
};

// rows x num_features floats in, rows x trees_width() predictions out; the margins from the fast evaluator, or
// with `reference` from Forest::Margins (the benchmark's "before" row).
void Predict(Engine* e, const float* features, size_t rows, double* out, bool reference) {
  const auto& f = e->forest;
  e->margins.resize(rows * f.num_outputs);
  const std::span<const float> x(features, rows * f.num_features);
  if (reference) {
    f.Margins(x, rows, e->margins);
  } else {
    e->evaluator.Margins(x, rows, e->margins);
  }
  f.Transform(e->margins, rows, {out, rows * f.prediction_width()});
}

}  // namespace

extern "C" {

// Loads LightGBM text (.txt), XGBoost JSON (.json) or UBJSON (.ubj); nullptr with the reason in `error`.
void* trees_load(const char* path, char* error, size_t error_size) {
  auto forest = serving::trees::LoadModelFile(path, serving::trees::FormatOfExtension(path));
  if (!forest.ok()) {
    std::snprintf(error, error_size, "%s", forest.status().message().c_str());
    return nullptr;
  }
  return new Engine(std::move(*forest));
}

size_t trees_width(void* engine) { return static_cast<Engine*>(engine)->forest.prediction_width(); }

void trees_predict(void* engine, const float* features, size_t rows, double* out) {
  Predict(static_cast<Engine*>(engine), features, rows, out, false);
}

void trees_predict_reference(void* engine, const float* features, size_t rows, double* out) {
  Predict(static_cast<Engine*>(engine), features, rows, out, true);
}

// Rows per second of trees_predict (or, with `reference`, trees_predict_reference) timed in C++ for at least
// `seconds`: batches of `batch` rows taken in turn from `rows` rows, each predicted whole.
double trees_rows_per_second(void* engine, const float* features, size_t rows, size_t batch, double seconds,
                             int reference) {
  auto* e = static_cast<Engine*>(engine);
  std::vector<double> out(batch * e->forest.prediction_width());
  const auto start = std::chrono::steady_clock::now();
  size_t done = 0;
  for (size_t at = 0;; at = at + 2 * batch > rows ? 0 : at + batch) {
    Predict(e, features + at * e->forest.num_features, batch, out.data(), reference != 0);
    done += batch;
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    if (elapsed.count() >= seconds) return static_cast<double>(done) / elapsed.count();
  }
}

void trees_free(void* engine) { delete static_cast<Engine*>(engine); }
}
