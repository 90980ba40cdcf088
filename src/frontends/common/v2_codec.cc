#include "frontends/common/v2_codec.h"

#include "frontends/common/v2_contract.h"

#include <limits>

namespace serving::frontends {
namespace {

using Contents = inference::InferTensorContents;

// Narrows int32/uint32 contents into INT8/INT16/UINT8/UINT16, range-checked.
template <typename Out, typename In>
StatusOr<std::vector<std::byte>> Narrow(const google::protobuf::RepeatedField<In>& in, const std::string& input,
                                        DataType dtype) {
  std::vector<std::byte> out(in.size() * sizeof(Out));
  for (int i = 0; i < in.size(); ++i) {
    if (in[i] < std::numeric_limits<Out>::min() || in[i] > std::numeric_limits<Out>::max())
      return v2::NotAValid(input, static_cast<size_t>(i), std::to_string(in[i]), dtype);
    Out v = static_cast<Out>(in[i]);
    std::memcpy(out.data() + i * sizeof(Out), &v, sizeof(Out));
  }
  return out;
}

template <typename T>
Tensor View(const std::string& name, DataType dtype, const Shape& shape, const google::protobuf::RepeatedField<T>& f) {
  return Tensor::Borrowed(name, dtype, shape, f.data(), f.size() * sizeof(T));
}

// Where values of element type T travel in InferTensorContents: its name and the field. FP16 and BF16
// have no field (the spec sends them in raw_input_contents only); BYTES is handled on its own.
template <typename T>
constexpr const char* ContentsName() {
  if constexpr (std::is_same_v<T, bool>) return "bool_contents";
  if constexpr (std::is_same_v<T, int64_t>) return "int64_contents";
  if constexpr (std::is_same_v<T, uint64_t>) return "uint64_contents";
  if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) return "int_contents";
  if constexpr (std::is_integral_v<T>) return "uint_contents";
  if constexpr (std::is_same_v<T, float>) return "fp32_contents";
  if constexpr (std::is_same_v<T, double>) return "fp64_contents";
  return nullptr;
}

template <typename T>
const auto& ContentsOf(const Contents& c) {
  if constexpr (std::is_same_v<T, bool>) {
    return c.bool_contents();
  } else if constexpr (std::is_same_v<T, int64_t>) {
    return c.int64_contents();
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    return c.uint64_contents();
  } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
    return c.int_contents();
  } else if constexpr (std::is_integral_v<T>) {
    return c.uint_contents();
  } else if constexpr (std::is_same_v<T, float>) {
    return c.fp32_contents();
  } else {
    return c.fp64_contents();
  }
}

int ValueCount(const Contents& c) {
  return c.bool_contents_size() + c.int_contents_size() + c.int64_contents_size() + c.uint_contents_size() +
         c.uint64_contents_size() + c.fp32_contents_size() + c.fp64_contents_size() + c.bytes_contents_size();
}

StatusOr<Tensor> FromContents(const inference::ModelInferRequest::InferInputTensor& in, DataType d, Shape shape) {
  const Contents& c = in.contents();
  const std::string where = "input " + Quote(in.name());
  auto only = [&](int used, const char* field) -> Status {
    if (used == ValueCount(c)) return Status::Ok();
    return InvalidArgument(where + ": " + DataTypeName(d) + " data must be in contents." + field + " only");
  };
  if (d == DataType::kBytes) {
    SERVING_RETURN_IF_ERROR(only(c.bytes_contents_size(), "bytes_contents"));
    std::vector<std::byte> bytes;
    for (const std::string& e : c.bytes_contents()) AppendBytesElement(bytes, e);
    return Tensor::Owning(in.name(), d, std::move(shape), std::move(bytes));
  }
  return VisitDataType(d, [&](auto type) -> StatusOr<Tensor> {
    using T = typename decltype(type)::type;
    if constexpr (std::is_void_v<T> || ContentsName<T>() == nullptr) {
      return InvalidArgument(where + ": " + DataTypeName(d) +
                             " data has no contents field in the v2 protocol; send it in raw_input_contents");
    } else {
      const auto& field = ContentsOf<T>(c);
      SERVING_RETURN_IF_ERROR(only(field.size(), ContentsName<T>()));
      using Wire = typename std::decay_t<decltype(field)>::value_type;
      if constexpr (std::is_same_v<Wire, T>) {
        return View(in.name(), d, shape, field);
      } else {
        SERVING_ASSIGN_OR_RETURN(auto bytes, Narrow<T>(field, in.name(), d));
        return Tensor::Owning(in.name(), d, std::move(shape), std::move(bytes));
      }
    }
  });
}

}  // namespace

Status DecodeV2Request(const inference::ModelInferRequest& in, InferRequest& r) {
  r.id = in.id();
  r.model = in.model_name();
  r.version = in.model_version();
  if (r.model.empty()) return InvalidArgument("model_name is empty");
  if (in.inputs().empty()) return v2::NoInputs();
  const bool raw = !in.raw_input_contents().empty();
  if (raw && in.raw_input_contents_size() != in.inputs_size())
    return InvalidArgument("raw_input_contents has " + std::to_string(in.raw_input_contents_size()) + " entries for " +
                           std::to_string(in.inputs_size()) + " inputs");
  for (int i = 0; i < in.inputs_size(); ++i) {
    const auto& t = in.inputs(i);
    if (t.name().empty()) return v2::InputWithoutName(static_cast<size_t>(i));
    SERVING_ASSIGN_OR_RETURN(auto dtype, v2::InputDatatype(t.name(), t.datatype()));
    const DataType d = dtype;
    Shape shape(t.shape().begin(), t.shape().end());
    if (raw) {
      if (ValueCount(t.contents()) > 0) return v2::DataSentTwice(t.name());
      const std::string& bytes = in.raw_input_contents(i);
      r.inputs.push_back(Tensor::Borrowed(t.name(), d, std::move(shape), bytes.data(), bytes.size()));
      continue;
    }
    if (ValueCount(t.contents()) == 0 && v2::NeedsData(shape)) return v2::NoData(t.name());
    SERVING_ASSIGN_OR_RETURN(auto tensor, FromContents(t, d, std::move(shape)));
    r.inputs.push_back(std::move(tensor));
  }
  for (const auto& o : in.outputs()) {
    if (o.name().empty()) return v2::OutputWithoutName();
    r.requested_outputs.push_back(o.name());
  }
  for (std::string_view name : v2::kSchedulingParameters) {
    auto p = in.parameters().find(std::string(name));
    if (p == in.parameters().end()) continue;
    std::optional<uint64_t> value;
    if (p->second.has_uint64_param()) value = p->second.uint64_param();
    if (p->second.has_int64_param() && p->second.int64_param() >= 0)
      value = static_cast<uint64_t>(p->second.int64_param());
    SERVING_RETURN_IF_ERROR(v2::SetSchedulingParameter(name, value, r));
  }
  return Status::Ok();
}

void EncodeV2Response(const InferResponse& r, inference::ModelInferResponse* out) {
  out->set_model_name(r.model);
  out->set_model_version(std::to_string(r.version));
  out->set_id(r.id);
  for (const auto& t : r.outputs) {
    auto* o = out->add_outputs();
    o->set_name(t.name);
    o->set_datatype(DataTypeName(t.dtype));
    for (int64_t d : t.shape) o->add_shape(d);
    out->add_raw_output_contents()->assign(reinterpret_cast<const char*>(t.data), t.byte_size);
  }
}

Status ModelMetadataV2(const InferenceServer& server, const std::string& name, const std::string& version,
                       inference::ModelMetadataResponse* out) {
  SERVING_ASSIGN_OR_RETURN(auto model, server.Describe(name, version));
  out->set_name(model.config->name);
  out->set_platform(model.config->config.platform());
  for (int64_t v : model.ready_versions) out->add_versions(std::to_string(v));
  auto fill = [](const std::vector<TensorSpec>& specs, auto* list) {
    for (const auto& s : specs) {
      auto* t = list->Add();
      t->set_name(s.name);
      t->set_datatype(DataTypeName(s.dtype));
      for (int64_t d : s.shape) t->add_shape(d);
    }
  };
  fill(model.signature.inputs, out->mutable_inputs());
  fill(model.signature.outputs, out->mutable_outputs());
  return Status::Ok();
}

Status ModelConfigV2(const InferenceServer& server, const std::string& name, const std::string& version,
                     inference::ModelConfigResponse* out) {
  SERVING_ASSIGN_OR_RETURN(auto model, server.Describe(name, version));
  *out->mutable_config() = model.config->config;
  return Status::Ok();
}

namespace {

void Fill(const StatDuration& from, inference::StatisticDuration* to) {
  to->set_count(from.count.load(std::memory_order_relaxed));
  to->set_ns(from.ns.load(std::memory_order_relaxed));
}

// A request's (or an execution's) three compute phases are always counted together, but as three relaxed
// counters: a reader between their increments could see them differ, which perf_analyzer refuses ("compute
// counts must be the same"). One count, read once, stands for all three.
template <typename Stats>
void FillCompute(const StatDuration& input, const StatDuration& infer, const StatDuration& output, Stats* to) {
  const uint64_t count = infer.count.load(std::memory_order_relaxed);
  Fill(input, to->mutable_compute_input());
  Fill(infer, to->mutable_compute_infer());
  Fill(output, to->mutable_compute_output());
  to->mutable_compute_input()->set_count(count);
  to->mutable_compute_infer()->set_count(count);
  to->mutable_compute_output()->set_count(count);
}

}  // namespace

Status ModelStatisticsV2(const InferenceServer& server, const std::string& name, const std::string& version,
                         inference::ModelStatisticsResponse* out) {
  SERVING_ASSIGN_OR_RETURN(auto versions, server.Statistics(name, version));
  for (const auto& v : versions) {
    const ModelStatistics& s = *v.stats;
    auto* m = out->add_model_stats();
    m->set_name(v.name);
    m->set_version(std::to_string(v.version));
    m->set_last_inference(s.last_inference_ms.load(std::memory_order_relaxed));
    m->set_inference_count(s.inference_count.load(std::memory_order_relaxed));
    m->set_execution_count(s.execution_count.load(std::memory_order_relaxed));
    auto* i = m->mutable_inference_stats();
    Fill(s.success, i->mutable_success());
    Fill(s.fail, i->mutable_fail());
    Fill(s.queue, i->mutable_queue());
    FillCompute(s.compute_input, s.compute_infer, s.compute_output, i);
    i->mutable_cache_hit();
    i->mutable_cache_miss();
    for (size_t size = 1; size <= ModelStatistics::kMaxBatchTracked; ++size) {
      const auto* b = s.BatchIfAny(size);
      if (!b) continue;
      auto* bs = m->add_batch_stats();
      bs->set_batch_size(size);
      FillCompute(b->compute_input, b->compute_infer, b->compute_output, bs);
    }
  }
  return Status::Ok();
}

void ModelControlV2(InferenceServer& server, bool load, const std::string& repository, const std::string& model,
                    const std::vector<std::string>& parameters, const InferenceServer::ControlCallback& done) {
  if (!repository.empty())
    return done(
        InvalidArgument("repository_name '" + repository + "': this server has one repository; leave it empty"));
  for (const auto& p : parameters) {
    if (!load && p == "unload_dependents") continue;  // no ensembles: nothing depends on a model
    return done(InvalidArgument("parameter '" + p + "' is not supported by " + (load ? "load" : "unload") +
                                " (the model is loaded from its directory as it is)"));
  }
  load ? server.LoadModel(model, done) : server.UnloadModel(model, done);
}

void RepositoryIndexV2(const InferenceServer& server, bool ready_only, inference::RepositoryIndexResponse* out) {
  for (const auto& m : server.ListModels()) {
    if (m.versions.empty() && !ready_only) {
      auto* idx = out->add_models();
      idx->set_name(m.name);
      idx->set_state("UNAVAILABLE");
      idx->set_reason(m.error);
    }
    for (const auto& v : m.versions) {
      if (ready_only && v.state != VersionState::kReady) continue;
      auto* idx = out->add_models();
      idx->set_name(m.name);
      idx->set_version(std::to_string(v.version));
      idx->set_state(VersionStateName(v.state));
      idx->set_reason(v.reason);
    }
  }
}

void ServerMetadataV2(inference::ServerMetadataResponse* out) {
  out->set_name("inference-server");
  out->set_version(SERVING_VERSION);
  out->add_extensions("model_repository");
  out->add_extensions("binary_tensor_data");
  out->add_extensions("model_configuration");
  out->add_extensions("statistics");
  out->add_extensions("schedule_policy");
  out->add_extensions("model_repository(unload_dependents)");
}

}  // namespace serving::frontends
