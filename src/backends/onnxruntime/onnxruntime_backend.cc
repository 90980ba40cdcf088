#include "backends/onnxruntime/onnxruntime_backend.h"

#include "observability/logger.h"

#include <onnxruntime_cxx_api.h>

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

namespace serving::onnxruntime {
namespace {

// Our datatypes and ONNX's, one pair each.
constexpr std::pair<DataType, ONNXTensorElementDataType> kOnnxTypes[] = {
    {DataType::kBool, ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL},
    {DataType::kInt8, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8},
    {DataType::kInt16, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16},
    {DataType::kInt32, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32},
    {DataType::kInt64, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64},
    {DataType::kUint8, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8},
    {DataType::kUint16, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16},
    {DataType::kUint32, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32},
    {DataType::kUint64, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64},
    {DataType::kFp16, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16},
    {DataType::kBf16, ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16},
    {DataType::kFp32, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT},
    {DataType::kFp64, ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE},
    {DataType::kBytes, ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING},
};

DataType FromOnnx(ONNXTensorElementDataType t) {
  for (const auto& [ours, onnx] : kOnnxTypes)
    if (onnx == t) return ours;
  return DataType::kInvalid;
}

ONNXTensorElementDataType ToOnnx(DataType t) {
  for (const auto& [ours, onnx] : kOnnxTypes)
    if (ours == t) return onnx;
  return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
}

Status FromOrt(const Ort::Exception& e, const std::string& context) {
  std::string msg = context + ": " + e.what();
  switch (e.GetOrtErrorCode()) {
    case ORT_INVALID_ARGUMENT:
    case ORT_INVALID_GRAPH: return InvalidArgument(msg);
    case ORT_NO_SUCHFILE: return NotFound(msg);
    case ORT_NOT_IMPLEMENTED: return Unimplemented(msg);
    default: return Internal(msg);
  }
}

// Triton's ONNX Runtime backend's thread parameters (per instance; 0 or unset: the server's flags).
constexpr const char* kIntraOpThreads = "intra_op_thread_count";
constexpr const char* kInterOpThreads = "inter_op_thread_count";
constexpr uint32_t kMaxThreads = 1024;

StatusOr<uint32_t> ThreadCount(const std::string& key, const std::string& value) {
  uint32_t n = 0;
  if (value.empty()) return n;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || end != value.data() + value.size() || n > kMaxThreads)
    return InvalidArgument("parameters['" + key + "'] must be a whole number from 0 to " + std::to_string(kMaxThreads) +
                           ", got '" + value.substr(0, 64) + "'");
  return n;
}

// ONNX Runtime's own warnings go through the JSON logger, not as plain text on stderr.
void OrtLog(void*, OrtLoggingLevel severity, const char* category, const char*, const char* code_location,
            const char* message) {
  const logging::Level level = severity >= ORT_LOGGING_LEVEL_ERROR     ? logging::Level::kError
                               : severity >= ORT_LOGGING_LEVEL_WARNING ? logging::Level::kWarn
                                                                       : logging::Level::kDebug;
  logging::Log(level, "onnxruntime", {{"detail", message}, {"category", category}, {"where", code_location}});
}

Ort::Env& GlobalEnv() {
  // Lives for the process.
  static auto* env = new Ort::Env(ORT_LOGGING_LEVEL_WARNING, "inference-server", &OrtLog, nullptr);
  return *env;
}

// Reads one side (inputs or outputs) of the session's signature.
StatusOr<std::vector<TensorSpec>> ReadSpecs(Ort::Session& session, bool inputs) {
  Ort::AllocatorWithDefaultOptions alloc;
  std::vector<TensorSpec> specs;
  const size_t n = inputs ? session.GetInputCount() : session.GetOutputCount();
  for (size_t i = 0; i < n; ++i) {
    auto name = inputs ? session.GetInputNameAllocated(i, alloc) : session.GetOutputNameAllocated(i, alloc);
    Ort::TypeInfo type = inputs ? session.GetInputTypeInfo(i) : session.GetOutputTypeInfo(i);
    const std::string kind = inputs ? "input" : "output";
    if (type.GetONNXType() != ONNX_TYPE_TENSOR)
      return InvalidArgument(kind + " '" + name.get() +
                             "' is not a tensor (a sequence or map, e.g. scikit-learn's "
                             "ZipMap: export classifiers with zipmap=False)");
    auto info = type.GetTensorTypeAndShapeInfo();
    TensorSpec spec;
    spec.name = name.get();
    spec.dtype = FromOnnx(info.GetElementType());
    if (spec.dtype == DataType::kInvalid)
      return InvalidArgument(kind + " '" + spec.name + "' has an unsupported element type " +
                             std::to_string(static_cast<int>(info.GetElementType())));
    spec.shape = info.GetShape();
    for (auto& d : spec.shape)
      if (d < 0) d = -1;  // symbolic dimensions ("N", "batch") are variable
    specs.push_back(std::move(spec));
  }
  return specs;
}

class OnnxModel : public Model {
 public:
  OnnxModel(Ort::Session session, ModelSignature signature)
      : session_(std::move(session)),
        signature_(std::move(signature)),
        memory_(Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault)) {}

  const ModelSignature& signature() const override { return signature_; }

  Status Execute(std::span<const Tensor> inputs, std::span<const std::string> outputs,
                 std::vector<Tensor>* results) override {
    try {
      std::vector<Ort::Value> values;
      std::vector<const char*> input_names;
      values.reserve(inputs.size());
      for (const auto& t : inputs) {
        if (t.dtype == DataType::kBytes) {
          values.push_back(StringTensor(t));
        } else {
          // ONNX Runtime does not write to inputs; the cast only satisfies its C signature. No copy.
          values.push_back(Ort::Value::CreateTensor(memory_, const_cast<std::byte*>(t.data), t.byte_size,
                                                    t.shape.data(), t.shape.size(), ToOnnx(t.dtype)));
        }
        input_names.push_back(t.name.c_str());
      }
      std::vector<const char*> output_names;
      for (const auto& o : outputs) output_names.push_back(o.c_str());
      auto out = session_.Run(Ort::RunOptions{nullptr}, input_names.data(), values.data(), values.size(),
                              output_names.data(), output_names.size());
      results->clear();
      for (size_t i = 0; i < out.size(); ++i) {
        auto value = std::make_shared<Ort::Value>(std::move(out[i]));
        auto info = value->GetTensorTypeAndShapeInfo();
        if (info.GetElementType() == ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING) {
          results->push_back(FromStringTensor(outputs[i], *value, info));
          continue;
        }
        Tensor t;
        t.name = outputs[i];
        t.dtype = FromOnnx(info.GetElementType());
        t.shape = info.GetShape();
        t.byte_size = info.GetElementCount() * ByteSize(t.dtype);
        t.data = static_cast<const std::byte*>(value->GetTensorRawData());
        t.owner = std::move(value);  // the response views ONNX Runtime's output buffer directly
        results->push_back(std::move(t));
      }
      return Status::Ok();
    } catch (const Ort::Exception& e) {
      return FromOrt(e, "onnxruntime");
    }
  }

 private:
  // BYTES in, ONNX strings: ONNX Runtime keeps strings as std::string objects, so these are copies.
  static Ort::Value StringTensor(const Tensor& t) {
    Ort::AllocatorWithDefaultOptions allocator;
    auto value =
        Ort::Value::CreateTensor(allocator, t.shape.data(), t.shape.size(), ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING);
    const auto elements = SplitBytesElements(t.bytes()).value_or(std::vector<std::string_view>{});  // validated
    for (size_t i = 0; i < elements.size(); ++i) {  // sized buffers: elements may hold NUL bytes
      char* buffer = value.GetResizedStringTensorElementBuffer(i, elements[i].size());
      if (!elements[i].empty()) std::memcpy(buffer, elements[i].data(), elements[i].size());
    }
    return value;
  }

  static Tensor FromStringTensor(const std::string& name, const Ort::Value& value,
                                 const Ort::TensorTypeAndShapeInfo& info) {
    std::vector<std::byte> bytes;
    const size_t n = info.GetElementCount();
    for (size_t i = 0; i < n; ++i) {
      std::string element(value.GetStringTensorElementLength(i), '\0');
      value.GetStringTensorElement(element.size(), i, element.data());
      AppendBytesElement(bytes, element);
    }
    return Tensor::Owning(name, DataType::kBytes, info.GetShape(), std::move(bytes));
  }

  Ort::Session session_;  // Run() is thread-safe
  const ModelSignature signature_;
  Ort::MemoryInfo memory_;
};

class OnnxBackend : public Backend {
  struct Threads {
    uint32_t intra, inter;
  };

  // The config's parameters, else the server's flags, else the cores shared out among the instances; logged
  // with a warning when instances x intra-op threads exceed the cores (only a config or flag can ask that).
  Threads ChooseThreads(const ModelSettings& config) const {
    const uint32_t cores = AvailableCores();
    const uint32_t instances = std::max<uint32_t>(1, config.instance_count);
    // Checked when the config was read (CheckParameter).
    const uint32_t intra = ThreadCount(kIntraOpThreads, ConfigParameter(config, kIntraOpThreads)).value_or(0);
    const uint32_t inter = ThreadCount(kInterOpThreads, ConfigParameter(config, kInterOpThreads)).value_or(0);
    Threads t{intra ? intra : options_.intra_op_threads, inter ? inter : options_.inter_op_threads};
    const bool automatic = t.intra == 0;
    if (automatic) t.intra = std::max<uint32_t>(1, cores / instances);
    if (t.inter == 0) t.inter = 1;
    const bool oversubscribed = static_cast<uint64_t>(instances) * t.intra > cores;
    logging::Log(oversubscribed ? logging::Level::kWarn : logging::Level::kInfo,
                 oversubscribed ? "onnxruntime threads oversubscribe the cores as configured" : "onnxruntime threads",
                 {{"model", config.name},
                  {"instances", instances},
                  {"intra_op_threads", t.intra},
                  {"inter_op_threads", t.inter},
                  {"cores", cores},
                  {"intra_op_threads_from", automatic ? "cores / instances" : "config or flag"}});
    return t;
  }

 public:
  explicit OnnxBackend(BackendOptions options) : options_(options) {}

  std::string model_filename(const ModelSettings&, const std::filesystem::path&) const override { return "model.onnx"; }
  std::vector<std::string> platforms() const override { return {"onnxruntime_onnx"}; }
  StatusOr<ParameterUse> CheckParameter(const std::string& key, const std::string& value) const override {
    if (key != kIntraOpThreads && key != kInterOpThreads) return ParameterUse{};
    SERVING_RETURN_IF_ERROR(ThreadCount(key, value).status());
    return ParameterUse{ParameterUse::kRead, ""};
  }

  StatusOr<std::unique_ptr<Model>> Load(const ModelSettings& config, const std::filesystem::path& path) override {
    try {
      Ort::SessionOptions so;
      const Threads threads = ChooseThreads(config);
      so.SetIntraOpNumThreads(static_cast<int>(threads.intra));
      so.SetInterOpNumThreads(static_cast<int>(threads.inter));
      so.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
      // Idle ORT threads sleep instead of spinning: the scheduler's instances already keep cores busy.
      so.AddConfigEntry("session.intra_op.allow_spinning", "0");
      so.AddConfigEntry("session.inter_op.allow_spinning", "0");
      Ort::Session session(GlobalEnv(), path.c_str(), so);
      ModelSignature sig;
      auto in = ReadSpecs(session, true);
      if (!in.ok()) return Status(in.status().code(), path.string() + ": " + in.status().message());
      auto out = ReadSpecs(session, false);
      if (!out.ok()) return Status(out.status().code(), path.string() + ": " + out.status().message());
      sig.inputs = std::move(in).value();
      sig.outputs = std::move(out).value();
      return std::unique_ptr<Model>(std::make_unique<OnnxModel>(std::move(session), std::move(sig)));
    } catch (const Ort::Exception& e) {
      return FromOrt(e, "loading " + path.string());
    }
  }

 private:
  const BackendOptions options_;
};

}  // namespace

uint32_t AvailableCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  uint32_t cores = sched_getaffinity(0, sizeof(set), &set) == 0 ? static_cast<uint32_t>(CPU_COUNT(&set))
                                                                : std::thread::hardware_concurrency();
  // cgroup v2: "max 100000" (no limit) or "<quota> <period>".
  std::ifstream in("/sys/fs/cgroup/cpu.max");
  std::string quota;
  uint64_t period = 0;
  if (in >> quota >> period && quota != "max" && period > 0) {
    const uint64_t q = std::strtoull(quota.c_str(), nullptr, 10);
    if (q > 0) cores = std::min<uint32_t>(cores, static_cast<uint32_t>((q + period - 1) / period));
  }
  return std::max<uint32_t>(1, cores);
}

std::unique_ptr<Backend> CreateBackend(const BackendOptions& options) { return std::make_unique<OnnxBackend>(options); }

}  // namespace serving::onnxruntime
