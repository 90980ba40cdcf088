#include "core/model_config.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "observability/logger.h"

namespace serving {
namespace fs = std::filesystem;
namespace {

constexpr uint32_t kMaxInstances = 64;
constexpr size_t kMaxLabelFileBytes = size_t{16} << 20;
constexpr int kMaxNesting = 32;

// The parser's first error, or the first field the schema does not know. Unknown fields inside an
// `Unmodelled` block are expected (they belong to a Triton feature judged after parsing, see Unsupported());
// an unknown field anywhere else is a mistake in the file.
class ErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override { Keep(line, column, message); }
  void AddWarning(int line, int column, const std::string& message) override {
    if (message.find("\"serving.config.Unmodelled\"") == std::string::npos) Keep(line, column, message);
  }
  std::string error;

 private:
  void Keep(int line, int column, const std::string& message) {
    if (error.empty()) error = "line " + std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " + message;
  }
};

// Writes `field [ ... ]` as `field: [ ... ]` (the same thing in text format). protobuf 3.21 accepts the
// colon-less list form only for fields it knows; when it skips the contents of an Unmodelled block it
// stops at it, and Triton's documentation writes e.g. `ensemble_scheduling { step [ {...} ] }` that way.
// Strings and comments are copied untouched; line numbers in errors stay right.
std::string ColonBeforeLists(const std::string& text) {
  std::string out;
  out.reserve(text.size() + 16);
  size_t i = 0;
  const auto ident = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  while (i < text.size()) {
    const char c = text[i];
    if (c == '#') {
      const size_t end = text.find('\n', i);
      const size_t stop = end == std::string::npos ? text.size() : end;
      out.append(text, i, stop - i);
      i = stop;
    } else if (c == '"' || c == '\'') {
      size_t j = i + 1;
      while (j < text.size() && text[j] != c && text[j] != '\n') j += text[j] == '\\' ? 2 : 1;
      j = std::min(j + 1, text.size());
      out.append(text, i, j - i);
      i = j;
    } else if (ident(c)) {
      size_t j = i;
      while (j < text.size() && ident(text[j])) ++j;
      out.append(text, i, j - i);
      size_t k = j;
      while (k < text.size() && std::isspace(static_cast<unsigned char>(text[k]))) ++k;
      if (k < text.size() && text[k] == '[' && !std::isdigit(static_cast<unsigned char>(c))) out += ':';
      i = j;
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

// What loading found to say about fields it does not use (logged once the config is accepted).
using Ignored = std::vector<std::pair<std::string, std::string>>;  // field, reason

Status CheckDims(const google::protobuf::RepeatedField<int64_t>& dims, const std::string& where) {
  for (int64_t d : dims)
    if (d < -1 || d == 0) return InvalidArgument(where + ".dims has invalid dimension " + std::to_string(d));
  return Status::Ok();
}

template <typename Tensors>
Status CheckTensors(const Tensors& tensors, const char* kind) {
  std::set<std::string> names;
  for (int i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    const std::string where = std::string(kind) + "[" + std::to_string(i) + "]";
    if (t.name().empty()) return InvalidArgument(where + ".name is empty");
    if (!names.insert(t.name()).second)
      return InvalidArgument(where + ": " + kind + " '" + t.name() + "' is declared twice");
    if (FromConfigDataType(t.data_type()) == DataType::kInvalid)
      return InvalidArgument(where + " '" + t.name() + "': data_type " + config::DataType_Name(t.data_type()) +
                             " is not supported");
    SERVING_RETURN_IF_ERROR(CheckDims(t.dims(), where));
    if (t.has_reshape()) return InvalidArgument(where + " '" + t.name() + "': reshape is not implemented");
    if (t.is_shape_tensor()) return InvalidArgument(where + " '" + t.name() + "': is_shape_tensor is not supported");
  }
  return Status::Ok();
}

Status CheckInputs(const config::ModelConfig& c) {
  SERVING_RETURN_IF_ERROR(CheckTensors(c.input(), "input"));
  for (const auto& in : c.input()) {
    if (in.allow_ragged_batch())
      return InvalidArgument("input '" + in.name() + "': allow_ragged_batch is not supported");
    if (in.optional()) return InvalidArgument("input '" + in.name() + "': optional inputs are not supported");
  }
  return CheckTensors(c.output(), "output");
}

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

// platform and backend name the same thing: fill each from the other, through the backends' own names.
StatusOr<const Backend*> ResolveBackend(config::ModelConfig& c, ModelSettings& s, const BackendRegistry& backends) {
  if (!c.platform().empty()) {
    const std::string name = backends.ForPlatform(c.platform());
    if (name.empty())
      return InvalidArgument("platform '" + c.platform() +
                             "' is not supported (platforms here: " + Join(backends.Platforms()) + ")");
    if (c.backend().empty()) c.set_backend(name);
    if (c.backend() != name)
      return InvalidArgument("platform '" + c.platform() + "' and backend '" + c.backend() + "' disagree");
  }
  if (c.backend().empty()) c.set_backend(backends.default_name());
  const Backend* backend = backends.Find(c.backend());
  if (backend == nullptr)
    return InvalidArgument("backend '" + c.backend() + "' is not available (backends here: " + Join(backends.Names()) +
                           ")");
  if (c.platform().empty() && !backend->platforms().empty()) c.set_platform(backend->platforms().front());
  s.backend = c.backend();
  if (!c.default_model_filename().empty()) {
    const fs::path f = c.default_model_filename();
    if (f != f.filename() || f == "." || f == "..")
      return InvalidArgument("default_model_filename '" + c.default_model_filename() +
                             "' must be a file name inside the version directory");
    s.model_filename = c.default_model_filename();
  }
  return backend;
}

Status ResolveInstances(config::ModelConfig& c, ModelSettings& s, Ignored& ignored) {
  if (c.instance_group().empty()) c.add_instance_group();
  uint64_t total = 0;
  for (int i = 0; i < c.instance_group_size(); ++i) {
    auto& g = *c.mutable_instance_group(i);
    const std::string where = "instance_group[" + std::to_string(i) + "]";
    if (g.kind() == config::ModelInstanceGroup::KIND_GPU || !g.gpus().empty())
      return InvalidArgument(where + ": GPU instances are not supported (this server runs on CPU; use KIND_CPU)");
    if (g.count() < 0) return InvalidArgument(where + ".count must not be negative");
    if (g.count() == 0) g.set_count(1);
    if (g.kind() == config::ModelInstanceGroup::KIND_AUTO) g.set_kind(config::ModelInstanceGroup::KIND_CPU);
    if (g.name().empty()) g.set_name(c.name() + "_" + std::to_string(i));
    if (g.has_rate_limiter()) ignored.emplace_back(where + ".rate_limiter", "instances run whenever they are free");
    if (!g.secondary_devices().empty()) ignored.emplace_back(where + ".secondary_devices", "CPU only");
    if (!g.profile().empty()) ignored.emplace_back(where + ".profile", "GPU engine profiles only");
    if (!g.host_policy().empty()) ignored.emplace_back(where + ".host_policy", "no host policies here");
    if (g.passive()) ignored.emplace_back(where + ".passive", "every instance serves requests");
    total += static_cast<uint64_t>(g.count());
  }
  if (total > kMaxInstances)
    return InvalidArgument("instance_group counts add up to " + std::to_string(total) + "; at most " +
                           std::to_string(kMaxInstances) + " instances");
  s.instance_count = static_cast<uint32_t>(total);
  return Status::Ok();
}

Status CheckQueuePolicy(const config::ModelQueuePolicy& p, const std::string& where) {
  if (p.max_queue_size() > 1u << 20)
    return InvalidArgument(where + ".max_queue_size must be at most " + std::to_string(1u << 20));
  return Status::Ok();
}

// dynamic_batching is validated here; the scheduler (core/scheduler.h) honours it.
Status CheckDynamicBatching(const config::ModelConfig& c, ModelSettings& s, Ignored& ignored) {
  if (!c.has_dynamic_batching()) return Status::Ok();
  const auto& b = c.dynamic_batching();
  for (int32_t p : b.preferred_batch_size()) {
    if (p <= 0) return InvalidArgument("dynamic_batching.preferred_batch_size must be positive");
    if (p > c.max_batch_size())
      return InvalidArgument("dynamic_batching.preferred_batch_size " + std::to_string(p) +
                             " is larger than max_batch_size " + std::to_string(c.max_batch_size()));
  }
  // One queue per level: a bound keeps a config from allocating billions of them.
  constexpr uint64_t kMaxPriorityLevels = 1024;
  if (b.priority_levels() > kMaxPriorityLevels)
    return InvalidArgument("dynamic_batching.priority_levels is " + std::to_string(b.priority_levels()) + "; at most " +
                           std::to_string(kMaxPriorityLevels));
  if (b.priority_levels() == 0 && (b.default_priority_level() != 0 || !b.priority_queue_policy().empty()))
    return InvalidArgument("dynamic_batching: default_priority_level and priority_queue_policy need priority_levels");
  if (b.priority_levels() > 0 && (b.default_priority_level() < 1 || b.default_priority_level() > b.priority_levels()))
    return InvalidArgument("dynamic_batching.default_priority_level must be between 1 and priority_levels (" +
                           std::to_string(b.priority_levels()) + ")");
  SERVING_RETURN_IF_ERROR(CheckQueuePolicy(b.default_queue_policy(), "dynamic_batching.default_queue_policy"));
  for (const auto& [level, policy] : b.priority_queue_policy()) {
    const std::string where = "dynamic_batching.priority_queue_policy[" + std::to_string(level) + "]";
    if (level < 1 || level > b.priority_levels())
      return InvalidArgument(where + ": priority level out of range 1.." + std::to_string(b.priority_levels()));
    SERVING_RETURN_IF_ERROR(CheckQueuePolicy(policy, where));
  }
  if (b.default_queue_policy().max_queue_size() > 0) s.max_queue_size = b.default_queue_policy().max_queue_size();
  if (c.max_batch_size() == 0)
    ignored.emplace_back("dynamic_batching",
                         "max_batch_size is 0, so requests are not stacked (priority levels and "
                         "queue policies still apply)");
  return Status::Ok();
}

// The parameters the core reads (docs/model-repository.md); the request observers judge theirs, the backend
// every other key.
Status ReadParameters(const config::ModelConfig& c, const Backend& backend, const ParameterCheck& observers,
                      ModelSettings& s, Ignored& ignored) {
  for (const auto& [key, param] : c.parameters()) {
    const std::string& v = param.string_value();
    if (key == "scores_output") {
      s.scores_output = v;
    } else if (key == "feature_names") {
      std::stringstream names(v);
      for (std::string name; std::getline(names, name, ',');) {
        if (name.empty()) return InvalidArgument("parameters['feature_names'] holds an empty name");
        s.feature_names.push_back(name);
      }
      std::set<std::string> unique(s.feature_names.begin(), s.feature_names.end());
      if (unique.size() != s.feature_names.size())
        return InvalidArgument("parameters['feature_names'] names a feature twice");
    } else {
      ParameterUse use;
      if (observers) {
        SERVING_ASSIGN_OR_RETURN(use, observers(key, v));
      }
      if (use.kind == ParameterUse::kUnknown) {
        SERVING_ASSIGN_OR_RETURN(use, backend.CheckParameter(key, v));
      }
      if (use.kind == ParameterUse::kIgnored) ignored.emplace_back("parameters['" + key + "']", use.reason);
      if (use.kind == ParameterUse::kUnknown)
        ignored.emplace_back("parameters['" + key + "']",
                             "not a parameter this server or the " + s.backend + " backend reads");
    }
  }
  return Status::Ok();
}

// Triton blocks with no implementation here: refused when they would change results, else ignored.
Status Unsupported(const config::ModelConfig& c, Ignored& ignored) {
  if (c.has_sequence_batching()) return InvalidArgument("sequence_batching is not supported (stateless models only)");
  if (c.has_ensemble_scheduling()) return InvalidArgument("ensemble_scheduling is not supported");
  if (!c.batch_input().empty()) return InvalidArgument("batch_input is not supported");
  if (!c.batch_output().empty()) return InvalidArgument("batch_output is not supported");
  if (c.has_model_operations())
    return InvalidArgument("model_operations is not supported (custom operator libraries are not loaded)");
  if (c.has_model_repository_agents()) return InvalidArgument("model_repository_agents is not supported");
  if (c.model_transaction_policy().decoupled())
    return InvalidArgument("model_transaction_policy.decoupled is not supported (one response per request)");
  if (!c.runtime().empty() && c.runtime() != c.backend())
    return InvalidArgument("runtime '" + c.runtime() + "' is not supported");
  if (c.has_optimization())
    ignored.emplace_back("optimization", "each backend runs its engine's default graph optimizations");
  if (!c.model_warmup().empty()) ignored.emplace_back("model_warmup", "no warm-up requests are run");
  if (c.has_response_cache()) ignored.emplace_back("response_cache", "no response cache");
  if (c.has_model_metrics()) ignored.emplace_back("model_metrics", "metrics are fixed (docs/metrics.md)");
  if (!c.metric_tags().empty()) ignored.emplace_back("metric_tags", "metrics carry model and version labels only");
  if (!c.cc_model_filenames().empty()) ignored.emplace_back("cc_model_filenames", "GPU only");
  return Status::Ok();
}

// label_filename: one label per line, in the model's directory.
Status ReadLabels(const config::ModelConfig& c, const ModelFileReader& read_file, ModelSettings& s) {
  for (const auto& out : c.output()) {
    if (out.label_filename().empty()) continue;
    const fs::path f = out.label_filename();
    const std::string where = "output '" + out.name() + "' label_filename '" + out.label_filename() + "'";
    if (f != f.filename() || f == "." || f == "..")
      return InvalidArgument(where + " must be a file in the model's directory");
    auto text = read_file(out.label_filename(), kMaxLabelFileBytes);
    // NOT_FOUND stays NOT_FOUND: the repository reads the config again at its next poll (a label file uploaded
    // after its config is then found); a file over its bound is the config's mistake.
    if (!text.ok())
      return Status(
          text.status().code() == StatusCode::kNotFound ? StatusCode::kNotFound : StatusCode::kInvalidArgument,
          where + " cannot be read: " + text.status().message());
    std::istringstream in(*text);
    std::vector<std::string> labels;
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      labels.push_back(line);
    }
    if (labels.empty()) return InvalidArgument(where + " holds no labels");
    s.output_labels[out.name()] = std::move(labels);
  }
  return Status::Ok();
}

void FillDefaults(config::ModelConfig& c) {
  if (!c.has_version_policy()) c.mutable_version_policy()->mutable_latest()->set_num_versions(1);
  if (c.version_policy().has_latest() && c.version_policy().latest().num_versions() == 0)
    c.mutable_version_policy()->mutable_latest()->set_num_versions(1);
}

std::string SpecString(const TensorSpec& s) {
  return s.name + " " + DataTypeName(s.dtype) + " " + ShapeToString(s.shape);
}

// The shape a config's dims stand for: the batch dimension in front when the model batches.
Shape FullShape(const google::protobuf::RepeatedField<int64_t>& dims, int64_t max_batch_size) {
  Shape shape;
  if (max_batch_size > 0) shape.push_back(-1);
  shape.insert(shape.end(), dims.begin(), dims.end());
  return shape;
}

bool DimsAgree(const Shape& declared, const Shape& model) {
  if (declared.size() != model.size()) return false;
  for (size_t i = 0; i < declared.size(); ++i)
    if (declared[i] != -1 && model[i] != -1 && declared[i] != model[i]) return false;
  return true;
}

// Declared tensors must exist in the model with the same datatype and agreeing dims; the model's other
// tensors are added (the config may list a subset, e.g. only the output that carries label_filename).
template <typename Tensors>
Status MatchSpecs(const std::vector<TensorSpec>& actual, int64_t max_batch_size, Tensors* declared, const char* kind) {
  for (const auto& d : *declared) {
    auto it = std::find_if(actual.begin(), actual.end(), [&](const TensorSpec& s) { return s.name == d.name(); });
    if (it == actual.end())
      return InvalidArgument(std::string("config ") + kind + " '" + d.name() + "' is not in the model");
    if (FromConfigDataType(d.data_type()) != it->dtype || !DimsAgree(FullShape(d.dims(), max_batch_size), it->shape))
      return InvalidArgument(
          std::string("config ") + kind + " '" + d.name() + "' (" + config::DataType_Name(d.data_type()) + " " +
          ShapeToString(FullShape(d.dims(), max_batch_size)) + ") does not match the model (" + SpecString(*it) + ")");
  }
  for (const auto& s : actual) {
    if (std::any_of(declared->begin(), declared->end(), [&](const auto& d) { return d.name() == s.name; })) continue;
    if (max_batch_size > 0 && (s.shape.empty() || s.shape[0] != -1))
      return InvalidArgument(std::string("max_batch_size is ") + std::to_string(max_batch_size) + " but model " + kind +
                             " " + SpecString(s) + " has no variable first (batch) dimension");
    auto* d = declared->Add();
    d->set_name(s.name);
    d->set_data_type(ToConfigDataType(s.dtype));
    for (size_t i = max_batch_size > 0 ? 1 : 0; i < s.shape.size(); ++i) d->add_dims(s.shape[i]);
  }
  return Status::Ok();
}

}  // namespace

DataType FromConfigDataType(config::DataType type) {
  if (type == config::TYPE_STRING) return DataType::kBytes;
  if (type == config::TYPE_INVALID || !config::DataType_IsValid(type)) return DataType::kInvalid;
  return DataTypeFromName(config::DataType_Name(type).substr(5));  // after "TYPE_"
}

config::DataType ToConfigDataType(DataType type) {
  if (type == DataType::kBytes) return config::TYPE_STRING;
  config::DataType out = config::TYPE_INVALID;
  config::DataType_Parse(std::string("TYPE_") + DataTypeName(type), &out);
  return out;
}

bool IsValidModelName(std::string_view name) {
  if (name.empty() || name.size() > 128 || name.front() == '.') return false;
  for (char c : name) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

StatusOr<ModelSettings> ParseModelConfig(const std::string& text, const std::string& file_name,
                                         const std::string& model_name, const ModelFileReader& read_file,
                                         const BackendRegistry& backends, const ParameterCheck& observers) {
  ModelSettings s;
  config::ModelConfig& c = s.config;
  google::protobuf::TextFormat::Parser parser;
  ErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  parser.AllowUnknownField(true);  // judged by ErrorCollector: only inside Unmodelled blocks
  // Triton's configs nest a few levels; without a limit a file of nested blocks overflows the stack (the
  // parser recurses per level, skipped blocks included).
  parser.SetRecursionLimit(kMaxNesting);
  if (!parser.ParseFromString(ColonBeforeLists(text), &c) || !errors.error.empty())
    return InvalidArgument(file_name + ": " + errors.error);

  const std::string where = file_name + ": ";
  if (!c.name().empty() && c.name() != model_name)
    return InvalidArgument(where + "name '" + c.name() + "' differs from the directory name '" + model_name + "'");
  c.set_name(model_name);
  s.name = model_name;
  if (c.max_batch_size() < 0) return InvalidArgument(where + "max_batch_size must not be negative");
  s.max_batch_size = c.max_batch_size();
  FillDefaults(c);
  Ignored ignored;
  auto backend = ResolveBackend(c, s, backends);
  Status st = backend.status();
  if (st.ok()) st = CheckInputs(c);
  if (st.ok()) st = ResolveInstances(c, s, ignored);
  if (st.ok()) st = CheckDynamicBatching(c, s, ignored);
  if (st.ok()) st = ReadParameters(c, **backend, observers, s, ignored);
  if (st.ok()) st = Unsupported(c, ignored);
  if (st.ok()) st = ReadLabels(c, read_file, s);
  if (!st.ok())  // NOT_FOUND (a label file not there yet) kept: the repository reads the config again later
    return Status(st.code() == StatusCode::kNotFound ? st.code() : StatusCode::kInvalidArgument, where + st.message());
  for (const auto& [field, reason] : ignored)
    logging::Warn("model config field ignored", {{"model", model_name}, {"field", field}, {"reason", reason}});
  return s;
}

Status ReconcileSignature(const ModelSignature& signature, ModelSettings* s) {
  auto& c = s->config;
  SERVING_RETURN_IF_ERROR(MatchSpecs(signature.inputs, s->max_batch_size, c.mutable_input(), "input"));
  SERVING_RETURN_IF_ERROR(MatchSpecs(signature.outputs, s->max_batch_size, c.mutable_output(), "output"));
  if (s->scores_output.empty()) {
    for (const auto& o : c.output())  // the output that carries labels, else the first floating-point one
      if (s->output_labels.count(o.name())) s->scores_output = o.name();
    for (const auto& o : signature.outputs) {
      if (!s->scores_output.empty()) break;
      if (o.dtype == DataType::kFp32 || o.dtype == DataType::kFp64) s->scores_output = o.name;
    }
  } else {
    bool found = false;
    for (const auto& o : signature.outputs) found |= o.name == s->scores_output;
    if (!found)
      return InvalidArgument("parameters['scores_output'] '" + s->scores_output + "' is not an output of the model");
  }
  if (auto it = s->output_labels.find(s->scores_output); it != s->output_labels.end()) s->labels = it->second;
  if (s->feature_names.empty()) s->feature_names = signature.feature_names;
  if (!s->feature_names.empty()) {
    if (signature.inputs.size() != 1 || signature.inputs[0].shape.size() != 2)
      return InvalidArgument("parameters['feature_names'] needs a model with one input of shape [batch, features]");
    const int64_t width = signature.inputs[0].shape[1];
    if (width >= 0 && width != static_cast<int64_t>(s->feature_names.size()))
      return InvalidArgument("parameters['feature_names'] lists " + std::to_string(s->feature_names.size()) +
                             " names but the input has " + std::to_string(width) + " features");
  }
  return Status::Ok();
}

}  // namespace serving
