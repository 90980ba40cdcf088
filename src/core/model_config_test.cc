#include "core/model_config.h"

#include <gtest/gtest.h>

#include <fstream>

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

TEST(ModelConfigTest, FillsDefaults) {
  auto cfg = LoadModelConfig(Write("max_batch_size: 8\n"), "m");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_EQ(cfg->name(), "m");
  EXPECT_EQ(cfg->backend(), "onnxruntime");
  EXPECT_EQ(cfg->instance_count(), 1u);
  EXPECT_EQ(cfg->max_queue_size(), 1024u);
  EXPECT_EQ(cfg->version_policy().latest().num_versions(), 1u);
}

TEST(ModelConfigTest, ParseErrorsNameTheLine) {
  auto cfg = LoadModelConfig(Write("max_batch_size: 8\nbogus_field: 1\n"), "m");
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("line 2"), std::string::npos) << cfg.status().message();
  EXPECT_NE(cfg.status().message().find("bogus_field"), std::string::npos);
}

TEST(ModelConfigTest, RejectsInconsistentConfigs) {
  EXPECT_FALSE(LoadModelConfig(Write("name: \"other\"\n"), "m").ok());
  EXPECT_FALSE(LoadModelConfig(Write("input { name: \"x\" datatype: \"FP8\" }\n"), "m").ok());
  EXPECT_FALSE(LoadModelConfig(Write("input { name: \"x\" datatype: \"FP32\" shape: [-2] }\n"), "m").ok());
  EXPECT_FALSE(LoadModelConfig(Write("instance_count: 1000\n"), "m").ok());
}

TEST(ModelConfigTest, ReconcileFillsSignatureAndChecksFeatureNames) {
  ModelSignature sig;
  sig.inputs = {{"X", DataType::kFp32, {-1, 2}}};
  sig.outputs = {{"label", DataType::kInt64, {-1}}, {"probabilities", DataType::kFp32, {-1, 2}}};
  config::ModelConfig cfg;
  cfg.add_feature_names("a");
  cfg.add_feature_names("b");
  ASSERT_TRUE(ReconcileSignature(sig, &cfg).ok());
  EXPECT_EQ(cfg.input_size(), 1);
  EXPECT_EQ(cfg.scores_output(), "probabilities");
  cfg.add_feature_names("c");
  EXPECT_FALSE(ReconcileSignature(sig, &cfg).ok());
}

TEST(ModelConfigTest, ModelNamesCannotEscapeTheRepository) {
  EXPECT_TRUE(IsValidModelName("breast_cancer-v2.1"));
  for (const char* bad : {"", "..", ".hidden", "a/b", "a\\b", "x y", "../etc"})
    EXPECT_FALSE(IsValidModelName(bad)) << bad;
  EXPECT_FALSE(IsValidModelName(std::string(129, 'a')));
}

}  // namespace
}  // namespace serving
