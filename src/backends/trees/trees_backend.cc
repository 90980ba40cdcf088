#include "backends/trees/trees_backend.h"

#include <cmath>
#include <cstring>
#include <optional>
#include <set>

#include "backends/trees/evaluator.h"
#include "backends/trees/model_file.h"
#include "observability/logger.h"

namespace serving::trees {
namespace {

struct Options {
  Format format = Format::kLightGbm;
  bool output_class = false;  // the class index (or, with predict_proba, per-class probabilities)
  bool predict_proba = false;
  double threshold = 0.5;
};

// Triton FIL's parameters that decide what a tree model predicts (read here), and the ones that only tune
// FIL's GPU kernels (ignored, with a warning).
constexpr const char* kModelType = "model_type";
constexpr const char* kOutputClass = "output_class";
constexpr const char* kIsClassifier = "is_classifier";
constexpr const char* kPredictProba = "predict_proba";
constexpr const char* kThreshold = "threshold";
const std::set<std::string> kFilTuning = {"algo",
                                          "storage_type",
                                          "blocks_per_sm",
                                          "threads_per_tree",
                                          "transfer_threshold",
                                          "use_experimental_optimizations",
                                          "layout",
                                          "align_bytes",
                                          "chunk_size",
                                          "cpu_nthread"};

StatusOr<bool> ParseFlag(const std::string& key, const std::string& v, bool fallback) {
  if (v.empty()) return fallback;
  if (v == "true" || v == "True" || v == "1") return true;
  if (v == "false" || v == "False" || v == "0") return false;
  return InvalidArgument("parameters['" + key + "'] is '" + v.substr(0, 64) + "', not true or false");
}

StatusOr<bool> Flag(const ModelSettings& s, const std::string& key, bool fallback) {
  return ParseFlag(key, ConfigParameter(s, key), fallback);
}

// FIL's model_type; nullopt when not set.
StatusOr<std::optional<Format>> ParseModelType(const std::string& type) {
  if (type.empty()) return std::optional<Format>();
  if (type == "lightgbm") return std::optional(Format::kLightGbm);
  if (type == "xgboost_json") return std::optional(Format::kXgboostJson);
  if (type == "xgboost_ubj") return std::optional(Format::kXgboostUbjson);
  return InvalidArgument("parameters['model_type'] '" + type.substr(0, 64) +
                         "' is not supported (lightgbm, xgboost_json and xgboost_ubj are)");
}

StatusOr<double> ParseThreshold(const std::string& t) {
  if (t.empty()) return 0.5;
  char* end = nullptr;
  const double threshold = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size() || !std::isfinite(threshold))
    return InvalidArgument("parameters['threshold'] is '" + t.substr(0, 64) + "', not a number");
  return threshold;
}

// FIL's model_type, else the file's extension.
StatusOr<Format> FormatOf(const ModelSettings& s, const std::filesystem::path& file) {
  SERVING_ASSIGN_OR_RETURN(const auto type, ParseModelType(ConfigParameter(s, kModelType)));
  return type ? *type : FormatOfExtension(file);
}

class TreesModel : public Model {
 public:
  TreesModel(Forest forest, Options options, ModelSignature signature)
      : forest_(std::move(forest)), evaluator_(forest_), options_(options), signature_(std::move(signature)) {}

  const ModelSignature& signature() const override { return signature_; }
  const Forest& forest() const { return forest_; }
  const Evaluator& evaluator() const { return evaluator_; }

  Status Execute(std::span<const Tensor> inputs, std::span<const std::string> outputs,
                 std::vector<Tensor>* results) override {
    const Tensor& x = inputs[0];  // validated: FP32 [rows, features]
    const auto rows = static_cast<size_t>(x.shape[0]);
    const size_t k = forest_.num_outputs;
    std::vector<float> features(rows * forest_.num_features);
    if (!features.empty()) std::memcpy(features.data(), x.data, features.size() * sizeof(float));
    std::vector<double> margins(rows * k);
    evaluator_.Margins(features, rows, margins);
    results->clear();
    for (const std::string& name : outputs) {
      if (name == kMargin) {
        results->push_back(Floats(name, margins, rows, k));
        continue;
      }
      std::vector<double> predicted(rows * forest_.prediction_width());
      forest_.Transform(margins, rows, predicted);
      results->push_back(Prediction(name, predicted, rows));
    }
    return Status::Ok();
  }

  static constexpr const char* kMargin = "margin";

  // The prediction's width under `options` (see the header).
  static int64_t Width(const Forest& f, const Options& o) {
    if (!o.output_class) return f.prediction_width();
    if (!o.predict_proba) return 1;
    return f.num_outputs == 1 ? 2 : f.num_outputs;
  }

 private:
  static Tensor Floats(const std::string& name, std::span<const double> values, size_t rows, size_t width) {
    std::vector<std::byte> bytes(values.size() * sizeof(float));
    auto* out = reinterpret_cast<float*>(bytes.data());
    for (size_t i = 0; i < values.size(); ++i) out[i] = static_cast<float>(values[i]);
    return Tensor::Owning(name, DataType::kFp32, {static_cast<int64_t>(rows), static_cast<int64_t>(width)},
                          std::move(bytes));
  }

  Tensor Prediction(const std::string& name, const std::vector<double>& predicted, size_t rows) const {
    const size_t width = forest_.prediction_width();
    if (!options_.output_class) return Floats(name, predicted, rows, width);
    const auto out_width = static_cast<size_t>(Width(forest_, options_));
    std::vector<double> out(rows * out_width);
    for (size_t r = 0; r < rows; ++r) {
      const double* p = predicted.data() + r * width;
      double* o = out.data() + r * out_width;
      if (width == 1 && options_.predict_proba) {
        o[0] = 1.0 - p[0];
        o[1] = p[0];
      } else if (options_.predict_proba) {
        std::copy(p, p + width, o);
      } else if (width == 1) {
        // One column: a binary probability against the threshold, or already a class index (multi:softmax).
        o[0] = forest_.link == Link::kArgmax ? p[0] : (p[0] > options_.threshold ? 1.0 : 0.0);
      } else {
        o[0] = static_cast<double>(std::max_element(p, p + width) - p);
      }
    }
    return Floats(name, out, rows, out_width);
  }

  const Forest forest_;
  const Evaluator evaluator_;  // reads forest_
  const Options options_;
  const ModelSignature signature_;
};

class TreesBackend : public Backend {
 public:
  StatusOr<ParameterUse> CheckParameter(const std::string& key, const std::string& value) const override {
    if (kFilTuning.contains(key))
      return ParameterUse{ParameterUse::kIgnored, "a GPU tuning knob of Triton's FIL backend"};
    Status status;
    if (key == kModelType)
      status = ParseModelType(value).status();
    else if (key == kOutputClass || key == kIsClassifier || key == kPredictProba)
      status = ParseFlag(key, value, false).status();
    else if (key == kThreshold)
      status = ParseThreshold(value).status();
    else
      return ParameterUse{};
    if (!status.ok()) return status;
    return ParameterUse{ParameterUse::kRead, ""};
  }

  // FIL's default names by model_type; without one, model.txt (LightGBM), else the first XGBoost file there.
  std::string model_filename(const ModelSettings& config, const std::filesystem::path& version_dir) const override {
    const std::string type = ConfigParameter(config, kModelType);
    if (type == "xgboost_json") return "xgboost.json";
    if (type == "xgboost_ubj") return "xgboost.ubj";
    if (!type.empty()) return "model.txt";
    std::error_code ec;
    for (const char* name : {"model.txt", "model.json", "model.ubj", "xgboost.json", "xgboost.ubj"})
      if (std::filesystem::exists(version_dir / name, ec)) return name;
    return "model.txt";
  }

  StatusOr<std::unique_ptr<Model>> Load(const ModelSettings& config, const std::filesystem::path& path) override {
    const std::filesystem::path& file = path;
    Options o;
    SERVING_ASSIGN_OR_RETURN(auto format, FormatOf(config, file));
    o.format = format;
    SERVING_ASSIGN_OR_RETURN(auto forest, LoadModelFile(file, o.format));
    SERVING_ASSIGN_OR_RETURN(const bool output_class, Flag(config, kOutputClass, false));
    SERVING_ASSIGN_OR_RETURN(o.output_class, Flag(config, kIsClassifier, output_class));
    SERVING_ASSIGN_OR_RETURN(o.predict_proba, Flag(config, kPredictProba, false));
    SERVING_ASSIGN_OR_RETURN(o.threshold, ParseThreshold(ConfigParameter(config, kThreshold)));
    if (o.output_class && !forest.classifier)
      return InvalidArgument("output_class is true but the model's objective '" + forest.objective +
                             "' does not predict classes");

    ModelSignature sig;
    const std::string input = config.config.input_size() > 0 ? config.config.input(0).name() : "input__0";
    std::string output = "output__0";
    for (const auto& out : config.config.output())
      if (out.name() != TreesModel::kMargin) {
        output = out.name();
        break;
      }
    // NaN is a missing value to LightGBM and XGBoost; LightGBM compares infinities like any number, XGBoost
    // refuses them ("Input data contains `inf`"), and so does the server for its models.
    sig.inputs.push_back({input,
                          DataType::kFp32,
                          {-1, static_cast<int64_t>(forest.num_features)},
                          true,
                          forest.library == Library::kLightGbm});
    sig.outputs.push_back({output, DataType::kFp32, {-1, TreesModel::Width(forest, o)}});
    sig.outputs.push_back({TreesModel::kMargin, DataType::kFp32, {-1, static_cast<int64_t>(forest.num_outputs)}});
    sig.feature_names = forest.feature_names;
    auto model = std::make_unique<TreesModel>(std::move(forest), o, std::move(sig));
    const Forest& f = model->forest();
    const Evaluator::Layout layout = model->evaluator().layout();
    logging::Info("tree model loaded", {{"model", config.name},
                                        {"file", file.string()},
                                        {"trees", static_cast<int64_t>(f.trees.size())},
                                        {"features", static_cast<int64_t>(f.num_features)},
                                        {"outputs", static_cast<int64_t>(f.num_outputs)},
                                        {"objective", f.objective},
                                        {"evaluator", layout.packed ? "packed" : "reference"},
                                        {"nodes", static_cast<int64_t>(layout.nodes)},
                                        {"max_depth", static_cast<int64_t>(layout.max_depth)},
                                        {"special_splits", static_cast<int64_t>(layout.special_splits)}});
    return std::unique_ptr<Model>(std::move(model));
  }
};

}  // namespace

std::unique_ptr<Backend> CreateBackend() { return std::make_unique<TreesBackend>(); }

void Register(BackendRegistry* registry) {
  registry->Register("trees", CreateBackend());
  registry->Register("fil", CreateBackend());
}

}  // namespace serving::trees
