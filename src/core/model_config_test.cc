#include "core/model_config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "backends/onnxruntime/onnxruntime_backend.h"
#include "backends/trees/trees_backend.h"

namespace serving {
namespace {

std::filesystem::path Write(const std::string& text) {
  auto dir = std::filesystem::temp_directory_path() /
             ("cfg_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "config.pbtxt") << text;
  return dir / "config.pbtxt";
}

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A backend that is neither of the server's: its platform and its one parameter are its own business.
class ThirdBackend : public Backend {
 public:
  StatusOr<std::unique_ptr<Model>> Load(const ModelSettings&, const std::filesystem::path&) override {
    return Unimplemented("not loaded in these tests");
  }
  std::string model_filename(const ModelSettings&, const std::filesystem::path&) const override { return "m.bin"; }
  std::vector<std::string> platforms() const override { return {"third_platform"}; }
  StatusOr<ParameterUse> CheckParameter(const std::string& key, const std::string& value) const override {
    if (key == "knob" && value != "on") return InvalidArgument("knob!");
    if (key == "knob") return ParameterUse{ParameterUse::kRead, ""};
    if (key == "legacy_knob") return ParameterUse{ParameterUse::kIgnored, "no longer has an effect"};
    return ParameterUse{};
  }
};

// The server's backends, as main registers them, and a third one.
const BackendRegistry& Backends() {
  static const BackendRegistry* registry = [] {
    auto* r = new BackendRegistry;
    onnxruntime::Register(r, {});
    trees::Register(r);
    r->Register("third", std::make_unique<ThirdBackend>());
    return r;
  }();
  return *registry;
}

// A config on disk with its label files beside it (in the server, a RepositorySource reads them).
StatusOr<ModelSettings> LoadModelConfig(const std::filesystem::path& path, const std::string& model_name) {
  return ParseModelConfig(
      ReadAll(path), path.string(), model_name,
      [&](const std::string& file, size_t) -> StatusOr<std::string> {
        if (!std::filesystem::exists(path.parent_path() / file)) return NotFound("no such file");
        return ReadAll(path.parent_path() / file);
      },
      Backends());
}

TEST(ModelConfigTest, FillsDefaults) {
  auto cfg = LoadModelConfig(Write("max_batch_size: 8\n"), "m");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_EQ(cfg->name, "m");
  EXPECT_EQ(cfg->config.name(), "m");
  EXPECT_EQ(cfg->backend, "onnxruntime");
  EXPECT_EQ(cfg->config.platform(), "onnxruntime_onnx");
  EXPECT_EQ(cfg->max_batch_size, 8);
  EXPECT_EQ(cfg->instance_count, 1u);
  ASSERT_EQ(cfg->config.instance_group_size(), 1);
  EXPECT_EQ(cfg->config.instance_group(0).kind(), config::ModelInstanceGroup::KIND_CPU);
  EXPECT_EQ(cfg->max_queue_size, 1024u);
  EXPECT_EQ(cfg->config.version_policy().latest().num_versions(), 1u);
}

// Written the way Triton's documentation shows model configurations (onnxruntime platform, instance groups,
// the dynamic batcher with queue policies, the ONNX Runtime backend's thread parameters).
TEST(ModelConfigTest, ReadsTritonsSchema) {
  const auto path = Write(R"(
name: "m"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [
  {
    name: "input0"
    data_type: TYPE_FP32
    dims: [ 16 ]
  }
]
output [
  {
    name: "output0"
    data_type: TYPE_FP32
    dims: [ 4 ]
    label_filename: "labels.txt"
  }
]
instance_group [
  {
    count: 2
    kind: KIND_CPU
  },
  {
    count: 1
    kind: KIND_CPU
  }
]
dynamic_batching {
  preferred_batch_size: [ 4, 8 ]
  max_queue_delay_microseconds: 100
  priority_levels: 2
  default_priority_level: 1
  default_queue_policy { max_queue_size: 7 timeout_action: REJECT default_timeout_microseconds: 1000 }
  priority_queue_policy { key: 2 value: { timeout_action: DELAY allow_timeout_override: true } }
}
version_policy: { specific: { versions: [1, 3] } }
parameters { key: "intra_op_thread_count" value: { string_value: "3" } }
parameters { key: "inter_op_thread_count" value: { string_value: "2" } }
parameters { key: "execution_mode" value: { string_value: "0" } }
optimization { execution_accelerators { cpu_execution_accelerator : [ { name : "openvino" } ] } }
model_warmup [ { name: "w" batch_size: 1 inputs { key: "input0" value: { data_type: TYPE_FP32 dims: [ 16 ] zero_data: true } } } ]
)");
  std::ofstream(path.parent_path() / "labels.txt") << "a\nb\r\nc\nd\n";
  auto cfg = LoadModelConfig(path, "m");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_EQ(cfg->max_batch_size, 8);
  EXPECT_EQ(cfg->instance_count, 3u);
  EXPECT_EQ(cfg->max_queue_size, 7u);
  EXPECT_EQ(ConfigParameter(*cfg, "intra_op_thread_count"), "3");  // the ONNX Runtime backend's to read
  EXPECT_EQ(cfg->output_labels.at("output0"), (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(cfg->config.version_policy().specific().versions_size(), 2);
  EXPECT_EQ(cfg->config.dynamic_batching().priority_queue_policy().at(2).timeout_action(),
            config::ModelQueuePolicy::DELAY);
}

TEST(ModelConfigTest, ParseErrorsNameTheLine) {
  auto cfg = LoadModelConfig(Write("max_batch_size: 8\nbogus_field: 1\n"), "m");
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("line 2"), std::string::npos) << cfg.status().message();
  EXPECT_NE(cfg.status().message().find("bogus_field"), std::string::npos);
  // Inside a block we model, a misspelt field is an error too.
  cfg = LoadModelConfig(Write("input [ { name: \"x\" data_type: TYPE_FP32 dimz: [ 2 ] } ]\n"), "m");
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("dimz"), std::string::npos) << cfg.status().message();
}

TEST(ModelConfigTest, EachBackendOwnsItsPlatformsAndParameters) {
  auto third = LoadModelConfig(Write("platform: \"third_platform\"\nparameters { key: \"knob\" value: { "
                                     "string_value: \"on\" } }\n"),
                               "m");
  ASSERT_TRUE(third.ok()) << third.status().message();
  EXPECT_EQ(third->backend, "third");
  auto named = LoadModelConfig(Write("backend: \"third\"\n"), "m");
  ASSERT_TRUE(named.ok()) << named.status().message();
  EXPECT_EQ(named->config.platform(), "third_platform");
  auto fil = LoadModelConfig(Write("backend: \"fil\"\nparameters { key: \"model_type\" value: { string_value: "
                                   "\"xgboost_json\" } }\nparameters { key: \"algo\" value: { string_value: "
                                   "\"ALGO_AUTO\" } }\n"),
                             "m");
  ASSERT_TRUE(fil.ok()) << fil.status().message();
  EXPECT_EQ(fil->config.platform(), "");  // FIL has no platform name
  // One backend's parameter is not another's: unknown to ONNX Runtime, so ignored with a warning, not refused.
  EXPECT_TRUE(LoadModelConfig(Write("parameters { key: \"knob\" value: { string_value: \"off\" } }\n"), "m").ok());
}

TEST(ModelConfigTest, RejectsInconsistentConfigsNamingTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {"name: \"other\"\n", "differs from the directory name"},
      {"max_batch_size: -1\n", "max_batch_size"},
      {"platform: \"tensorrt_plan\"\n", "tensorrt_plan"},
      {"backend: \"python\"\n", "backend 'python' is not available"},
      {"platform: \"third_platform\" backend: \"onnxruntime\"\n", "disagree"},
      {"backend: \"third\"\nparameters { key: \"knob\" value: { string_value: \"off\" } }\n", "knob!"},
      {"backend: \"trees\"\nparameters { key: \"model_type\" value: { string_value: \"catboost\" } }\n", "catboost"},
      {"backend: \"trees\"\nparameters { key: \"predict_proba\" value: { string_value: \"maybe\" } }\n",
       "predict_proba"},
      {"backend: \"fil\"\nparameters { key: \"threshold\" value: { string_value: \"high\" } }\n", "threshold"},
      {"platform: \"onnxruntime_onnx\" backend: \"python\"\n", "disagree"},
      {"input { name: \"x\" data_type: TYPE_INVALID dims: [ 1 ] }\n", "TYPE_INVALID"},
      {"input { name: \"x\" data_type: TYPE_FP32 dims: [ -2 ] }\n", "-2"},
      {"input { name: \"x\" data_type: TYPE_FP32 dims: [ 1 ] } input { name: \"x\" data_type: TYPE_FP32 dims: [ 1 ] "
       "}\n",
       "twice"},
      {"input { name: \"x\" data_type: TYPE_FP32 dims: [ 4 ] reshape { shape: [ 2, 2 ] } }\n", "reshape"},
      {"input { name: \"x\" data_type: TYPE_FP32 dims: [ 4 ] optional: true }\n", "optional"},
      {"instance_group { count: 100 kind: KIND_CPU }\n", "at most 64"},
      {"instance_group { count: 1 kind: KIND_GPU }\n", "GPU"},
      {"instance_group { count: 1 gpus: [ 0 ] }\n", "GPU"},
      {"max_batch_size: 4 dynamic_batching { preferred_batch_size: [ 8 ] }\n", "preferred_batch_size 8"},
      {"dynamic_batching { default_priority_level: 1 }\n", "priority_levels"},
      {"max_batch_size: 4 dynamic_batching { priority_levels: 2 default_priority_level: 3 }\n",
       "default_priority_level"},
      {"max_batch_size: 4 dynamic_batching { priority_levels: 2 default_priority_level: 1 "
       "priority_queue_policy { key: 5 value: { } } }\n",
       "priority_queue_policy[5]"},
      {"sequence_batching {\n  max_sequence_idle_microseconds: 5000000\n  control_input [\n    {\n      name: "
       "\"START\"\n"
       "      control [ { kind: CONTROL_SEQUENCE_START fp32_false_true: [ 0, 1 ] } ]\n    }\n  ]\n  oldest { }\n}\n",
       "sequence_batching"},
      {"ensemble_scheduling {\n  step [\n    {\n      model_name: \"a\"\n      model_version: -1\n"
       "      input_map { key: \"IN\" value: \"x\" }\n    }\n  ]\n}\n",
       "ensemble_scheduling"},
      {"model_transaction_policy { decoupled: true }\n", "decoupled"},
      {"model_operations { op_library_filename: \"libcustom.so\" }\n", "model_operations"},
      {"model_repository_agents { agents [ { name: \"checksum\" parameters { key: \"k\" value: \"v\" } } ] }\n",
       "model_repository_agents"},
      {"parameters { key: \"intra_op_thread_count\" value: { string_value: \"many\" } }\n", "intra_op_thread_count"},
      {"parameters { key: \"feature_names\" value: { string_value: \"a,,b\" } }\n", "feature_names"},
      {"default_model_filename: \"../model.onnx\"\n", "default_model_filename"},
      {"output { name: \"y\" data_type: TYPE_FP32 dims: [ 2 ] label_filename: \"missing.txt\" }\n", "missing.txt"},
  };
  for (const auto& [text, named] : cases) {
    auto cfg = LoadModelConfig(Write(text), "m");
    ASSERT_FALSE(cfg.ok()) << text;
    EXPECT_NE(cfg.status().message().find(named), std::string::npos) << text << " -> " << cfg.status().message();
  }
}

TEST(ModelConfigTest, DeepNestingIsAnErrorNotACrash) {
  // Inside a block the schema models and inside one it skips (Unmodelled): bounded by the parser's depth limit.
  for (const std::string open : {"optimization { ", "model_warmup { inputs { key: \"k\" value { "}) {
    std::string text = open;
    for (int i = 0; i < 200000; ++i) text += "a { ";
    auto cfg = LoadModelConfig(Write(text), "m");
    ASSERT_FALSE(cfg.ok());
    EXPECT_NE(cfg.status().message().find("deep"), std::string::npos) << cfg.status().message().substr(0, 300);
  }
}

TEST(ModelConfigTest, ListsWithoutAColonAreReadAsLists) {
  // `field [ ... ]` is the same as `field: [ ... ]`, in known and skipped blocks, and strings stay untouched.
  auto cfg = LoadModelConfig(Write("max_batch_size: 4\ninput [ { name: \"a [b\" data_type: TYPE_FP32 dims [ 2 ] } ]\n"
                                   "# comment [ x\noptimization { execution_accelerators { cpu_execution_accelerator "
                                   "[ { name: \"openvino\" } ] } }\n"),
                             "m");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_EQ(cfg->config.input(0).name(), "a [b");
  EXPECT_EQ(cfg->config.input(0).dims_size(), 1);
}

TEST(ModelConfigTest, ReconcileCompletesTheConfigFromTheModel) {
  ModelSignature sig;
  sig.inputs = {{"X", DataType::kFp32, {-1, 2}}};
  sig.outputs = {{"label", DataType::kInt64, {-1}}, {"probabilities", DataType::kFp32, {-1, 2}}};
  ModelSettings s;
  s.max_batch_size = 4;
  s.feature_names = {"a", "b"};
  ASSERT_TRUE(ReconcileSignature(sig, &s).ok());
  ASSERT_EQ(s.config.input_size(), 1);
  EXPECT_EQ(s.config.input(0).data_type(), config::TYPE_FP32);
  EXPECT_EQ(std::vector<int64_t>(s.config.input(0).dims().begin(), s.config.input(0).dims().end()),
            std::vector<int64_t>{2});  // the batch dimension is implied by max_batch_size
  EXPECT_EQ(s.config.output_size(), 2);
  EXPECT_EQ(s.scores_output, "probabilities");
  s.feature_names.emplace_back("c");
  EXPECT_FALSE(ReconcileSignature(sig, &s).ok());
}

TEST(ModelConfigTest, DeclaredTensorsMustAgreeWithTheModel) {
  ModelSignature sig;
  sig.inputs = {{"X", DataType::kFp32, {-1, 2}}};
  sig.outputs = {{"Y", DataType::kFp32, {-1, 2}}};
  auto with = [&](int64_t max_batch, config::DataType type, const std::vector<int64_t>& dims) {
    ModelSettings s;
    s.max_batch_size = max_batch;
    auto* in = s.config.add_input();
    in->set_name("X");
    in->set_data_type(type);
    for (int64_t d : dims) in->add_dims(d);
    return ReconcileSignature(sig, &s);
  };
  EXPECT_TRUE(with(4, config::TYPE_FP32, {2}).ok());
  EXPECT_TRUE(with(0, config::TYPE_FP32, {-1, 2}).ok());  // no batch dimension: dims are the whole shape
  EXPECT_FALSE(with(4, config::TYPE_FP32, {3}).ok());
  EXPECT_FALSE(with(4, config::TYPE_FP32, {-1, 2}).ok());
  EXPECT_FALSE(with(4, config::TYPE_INT64, {2}).ok());
  ModelSettings fixed;  // batching needs a variable first dimension in the model
  fixed.max_batch_size = 4;
  sig.inputs[0].shape = {1, 2};
  EXPECT_FALSE(ReconcileSignature(sig, &fixed).ok());
}

TEST(ModelConfigTest, DatatypeNamesMapBothWays) {
  EXPECT_EQ(FromConfigDataType(config::TYPE_FP32), DataType::kFp32);
  EXPECT_EQ(FromConfigDataType(config::TYPE_STRING), DataType::kBytes);
  EXPECT_EQ(FromConfigDataType(config::TYPE_BF16), DataType::kBf16);
  EXPECT_EQ(FromConfigDataType(config::TYPE_INVALID), DataType::kInvalid);
  EXPECT_EQ(ToConfigDataType(DataType::kBytes), config::TYPE_STRING);
  EXPECT_EQ(ToConfigDataType(DataType::kUint16), config::TYPE_UINT16);
}

TEST(ModelConfigTest, ModelNamesCannotEscapeTheRepository) {
  EXPECT_TRUE(IsValidModelName("breast_cancer-v2.1"));
  for (const char* bad : {"", "..", ".hidden", "a/b", "a\\b", "x y", "../etc"})
    EXPECT_FALSE(IsValidModelName(bad)) << bad;
  EXPECT_FALSE(IsValidModelName(std::string(129, 'a')));
}

}  // namespace
}  // namespace serving
