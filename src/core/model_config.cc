#include "core/model_config.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <fstream>
#include <sstream>

namespace serving {
namespace {

class ErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (error.empty()) error = "line " + std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " + message;
  }
  std::string error;
};

Status CheckTensorSpecs(const google::protobuf::RepeatedPtrField<config::TensorSpec>& specs, const char* kind) {
  for (int i = 0; i < specs.size(); ++i) {
    const auto& s = specs[i];
    std::string where = std::string(kind) + "[" + std::to_string(i) + "]";
    if (s.name().empty()) return InvalidArgument(where + ".name is empty");
    if (DataTypeFromName(s.datatype()) == DataType::kInvalid)
      return InvalidArgument(where + ".datatype '" + s.datatype() + "' is not supported");
    for (int64_t d : s.shape())
      if (d < -1 || d == 0) return InvalidArgument(where + ".shape has invalid dimension " + std::to_string(d));
  }
  return Status::Ok();
}

std::string SpecString(const TensorSpec& s) {
  return s.name + " " + DataTypeName(s.dtype) + " " + ShapeToString(s.shape);
}

Status MatchSpecs(const std::vector<TensorSpec>& actual,
                  google::protobuf::RepeatedPtrField<config::TensorSpec>* declared, const char* kind) {
  if (declared->empty()) {
    for (const auto& s : actual) {
      auto* d = declared->Add();
      d->set_name(s.name);
      d->set_datatype(DataTypeName(s.dtype));
      for (int64_t dim : s.shape) d->add_shape(dim);
    }
    return Status::Ok();
  }
  if (static_cast<size_t>(declared->size()) != actual.size())
    return InvalidArgument(std::string("config declares ") + std::to_string(declared->size()) + " " + kind +
                           "s but the model has " + std::to_string(actual.size()));
  for (const auto& d : *declared) {
    auto it = std::find_if(actual.begin(), actual.end(), [&](const TensorSpec& s) { return s.name == d.name(); });
    if (it == actual.end())
      return InvalidArgument(std::string("config ") + kind + " '" + d.name() + "' is not in the model");
    if (DataTypeFromName(d.datatype()) != it->dtype || static_cast<size_t>(d.shape_size()) != it->shape.size())
      return InvalidArgument(std::string("config ") + kind + " '" + d.name() + "' does not match the model (" +
                             SpecString(*it) + ")");
  }
  return Status::Ok();
}

}  // namespace

bool IsValidModelName(std::string_view name) {
  if (name.empty() || name.size() > 128 || name.front() == '.') return false;
  for (char c : name) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

StatusOr<config::ModelConfig> LoadModelConfig(const std::filesystem::path& path, const std::string& model_name) {
  std::ifstream in(path);
  if (!in) return NotFound(path.string() + ": cannot be read");
  std::stringstream text;
  text << in.rdbuf();

  config::ModelConfig cfg;
  google::protobuf::TextFormat::Parser parser;
  ErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text.str(), &cfg)) return InvalidArgument(path.string() + ": " + errors.error);

  const std::string where = path.string() + ": ";
  if (!cfg.name().empty() && cfg.name() != model_name)
    return InvalidArgument(where + "name '" + cfg.name() + "' differs from the directory name '" + model_name + "'");
  cfg.set_name(model_name);
  if (cfg.backend().empty()) cfg.set_backend("onnxruntime");
  if (cfg.instance_count() == 0) cfg.set_instance_count(1);
  if (cfg.instance_count() > 64) return InvalidArgument(where + "instance_count must be at most 64");
  if (cfg.max_queue_size() == 0) cfg.set_max_queue_size(1024);
  if (!cfg.has_version_policy()) cfg.mutable_version_policy()->mutable_latest()->set_num_versions(1);
  if (cfg.version_policy().has_latest() && cfg.version_policy().latest().num_versions() == 0)
    cfg.mutable_version_policy()->mutable_latest()->set_num_versions(1);
  Status s = CheckTensorSpecs(cfg.input(), "input");
  if (s.ok()) s = CheckTensorSpecs(cfg.output(), "output");
  if (!s.ok()) return InvalidArgument(where + s.message());
  return cfg;
}

Status ReconcileSignature(const ModelSignature& signature, config::ModelConfig* cfg) {
  SERVING_RETURN_IF_ERROR(MatchSpecs(signature.inputs, cfg->mutable_input(), "input"));
  SERVING_RETURN_IF_ERROR(MatchSpecs(signature.outputs, cfg->mutable_output(), "output"));
  if (cfg->scores_output().empty()) {
    for (const auto& o : signature.outputs) {
      if (o.dtype == DataType::kFp32 || o.dtype == DataType::kFp64) {
        cfg->set_scores_output(o.name);
        break;
      }
    }
  } else {
    bool found = false;
    for (const auto& o : signature.outputs) found |= o.name == cfg->scores_output();
    if (!found) return InvalidArgument("scores_output '" + cfg->scores_output() + "' is not an output of the model");
  }
  if (!cfg->feature_names().empty()) {
    if (signature.inputs.size() != 1 || signature.inputs[0].shape.size() != 2)
      return InvalidArgument("feature_names needs a model with one input of shape [batch, features]");
    int64_t width = signature.inputs[0].shape[1];
    if (width >= 0 && width != cfg->feature_names_size())
      return InvalidArgument("feature_names lists " + std::to_string(cfg->feature_names_size()) +
                             " names but the input has " + std::to_string(width) + " features");
  }
  return Status::Ok();
}

}  // namespace serving
