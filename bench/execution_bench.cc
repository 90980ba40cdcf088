// One execution of the server next to a bare ONNX Runtime session run on the same input (#12: a batch-64
// execution within 5 % of the bare run). The server's execution is what its scheduler does for one batch of
// one-row requests: stack their rows into one input (core/batch.h), run Model::Execute of the onnxruntime
// backend, slice each request's rows back out of the outputs. The bare runs call Ort::Session::Run on the
// already stacked input: once with the session options the backend sets (here one intra-op thread, as in the
// throughput benchmark's configuration: 2 instances x 1 thread on 2 cores), once with ONNX Runtime's defaults
// (a thread per core, spinning).
// Run: make bench-execution (results: docs/benchmarks.md#one-execution-next-to-bare-onnx-runtime).
// Usage: execution_bench MODEL.onnx [MODEL.onnx...] [--benchmark_* flags]
#include <benchmark/benchmark.h>
#include <onnxruntime_cxx_api.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/onnxruntime/onnxruntime_backend.h"
#include "core/batch.h"
#include "observability/logger.h"

namespace serving {
namespace {

constexpr int64_t kMaxRows = 64;

// A model loaded three ways, and kMaxRows random rows for its one FP32 input [N, features].
struct Subject {
  std::string name;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
  std::unique_ptr<Ort::Session> bare_like_server, bare_default;
  std::string input;
  std::vector<std::string> outputs;
  int64_t features = 0;
  std::vector<float> rows;
};

Ort::Env& Env() {
  static Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "execution_bench");
  return env;
}

std::unique_ptr<Subject> LoadSubject(const std::filesystem::path& path) {
  auto s = std::make_unique<Subject>();
  s->name = path.parent_path().parent_path().filename().string();  // <model>/<version>/model.onnx
  s->backend = onnxruntime::CreateBackend({.intra_op_threads = 1});
  ModelSettings settings;
  settings.name = s->name;
  settings.instance_count = 1;
  auto model = s->backend->Load(settings, path);
  if (!model.ok()) {
    std::cerr << path << ": " << model.status().message() << "\n";
    return nullptr;
  }
  s->model = std::move(model).value();
  const ModelSignature& sig = s->model->signature();
  if (sig.inputs.size() != 1 || sig.inputs[0].dtype != DataType::kFp32 || sig.inputs[0].shape.size() != 2) {
    std::cerr << path << ": the benchmark takes models with one FP32 input [N, features]\n";
    return nullptr;
  }
  s->input = sig.inputs[0].name;
  s->features = sig.inputs[0].shape[1];
  for (const auto& o : sig.outputs) s->outputs.push_back(o.name);

  // The options the backend sets (backends/onnxruntime) for intra_op_thread_count 1.
  Ort::SessionOptions like_server;
  like_server.SetIntraOpNumThreads(1);
  like_server.SetInterOpNumThreads(1);
  like_server.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
  like_server.AddConfigEntry("session.intra_op.allow_spinning", "0");
  like_server.AddConfigEntry("session.inter_op.allow_spinning", "0");
  s->bare_like_server = std::make_unique<Ort::Session>(Env(), path.c_str(), like_server);
  s->bare_default = std::make_unique<Ort::Session>(Env(), path.c_str(), Ort::SessionOptions{});

  std::mt19937 rng(0);
  std::uniform_real_distribution<float> value(-1, 1);
  s->rows.resize(static_cast<size_t>(kMaxRows * s->features));
  for (float& v : s->rows) v = value(rng);
  return s;
}

// The scheduler's work for one batch of `state.range(0)` one-row requests.
void ServerExecution(benchmark::State& state, Subject* s) {
  const int64_t batch = state.range(0);
  std::vector<InferRequest> requests(static_cast<size_t>(batch));
  std::vector<const InferRequest*> pointers;
  for (int64_t i = 0; i < batch; ++i) {
    requests[i].inputs.push_back(Tensor::Borrowed(s->input, DataType::kFp32, {1, s->features},
                                                  s->rows.data() + i * s->features, s->features * sizeof(float)));
    pointers.push_back(&requests[i]);
  }
  std::vector<Tensor> results;
  for (auto _ : state) {
    std::vector<Tensor> stacked;
    if (batch > 1) stacked = StackInputs(pointers);
    const std::vector<Tensor>& inputs = batch > 1 ? stacked : requests[0].inputs;
    if (Status st = s->model->Execute(inputs, s->outputs, &results); !st.ok()) {
      state.SkipWithError(st.message().c_str());
      break;
    }
    if (batch > 1) {
      for (int64_t i = 0; i < batch; ++i)
        for (const Tensor& out : results) benchmark::DoNotOptimize(SliceRows(out, i, 1));
    }
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

void BareRun(benchmark::State& state, Subject* s, Ort::Session* session) {
  const int64_t batch = state.range(0);
  const Ort::MemoryInfo memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  const std::vector<int64_t> shape = {batch, s->features};
  std::vector<const char*> outputs;
  for (const auto& o : s->outputs) outputs.push_back(o.c_str());
  const char* input = s->input.c_str();
  for (auto _ : state) {
    Ort::Value value = Ort::Value::CreateTensor<float>(memory, s->rows.data(), static_cast<size_t>(batch * s->features),
                                                       shape.data(), 2);
    auto out = session->Run(Ort::RunOptions{nullptr}, &input, &value, 1, outputs.data(), outputs.size());
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

}  // namespace
}  // namespace serving

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  serving::logging::Configure(serving::logging::Level::kWarn, serving::logging::Format::kJson);
  std::vector<std::unique_ptr<serving::Subject>> subjects;
  for (int i = 1; i < argc; ++i) {
    auto s = serving::LoadSubject(argv[i]);
    if (!s) return 2;
    subjects.push_back(std::move(s));
  }
  if (subjects.empty()) {
    std::cerr << "usage: " << argv[0] << " MODEL.onnx [MODEL.onnx...] [--benchmark_* flags]\n";
    return 2;
  }
  for (const auto& s : subjects) {
    serving::Subject* p = s.get();
    benchmark::RegisterBenchmark((p->name + "/server_execution").c_str(), serving::ServerExecution, p)
        ->Arg(1)
        ->Arg(serving::kMaxRows)
        ->UseRealTime();
    benchmark::RegisterBenchmark((p->name + "/bare_ort_server_options").c_str(), serving::BareRun, p,
                                 p->bare_like_server.get())
        ->Arg(1)
        ->Arg(serving::kMaxRows)
        ->UseRealTime();
    benchmark::RegisterBenchmark((p->name + "/bare_ort_defaults").c_str(), serving::BareRun, p, p->bare_default.get())
        ->Arg(1)
        ->Arg(serving::kMaxRows)
        ->UseRealTime();
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
