// The fast evaluator against the reference one (Forest::Margins) on every committed model: the margins must be
// the same doubles, bit for bit, on rows built to sit on, beside and between the models' own thresholds, with
// NaN, infinities, signed zeros and values that LightGBM reads as zero, in batches that end inside and on the
// evaluator's blocks. (The end-to-end tests compare both with LightGBM and XGBoost themselves.)
#include "backends/trees/evaluator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <filesystem>
#include <limits>
#include <random>

#include "backends/trees/model_file.h"

namespace serving::trees {
namespace {

StatusOr<Forest> Load(const std::filesystem::path& file) { return LoadModelFile(file, FormatOfExtension(file)); }

// Values worth testing for each feature: every threshold the model splits it at, as the float nearest to it
// and the floats on either side, plus the values every rule treats specially.
std::vector<std::vector<float>> Candidates(const Forest& f) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const std::vector<float> special = {std::numeric_limits<float>::quiet_NaN(),
                                      kInf,
                                      -kInf,
                                      0.0f,
                                      -0.0f,
                                      1e-36f,
                                      -1e-36f,
                                      1e-35f,
                                      std::numeric_limits<float>::denorm_min(),
                                      std::numeric_limits<float>::max(),
                                      1.0f,
                                      2.0f,
                                      3.0f,
                                      -1.0f,
                                      1e9f};
  std::vector<std::vector<float>> values(f.num_features, special);
  for (const Tree& t : f.trees)
    for (const Node& n : t.nodes) {
      if (n.feature < 0) continue;
      if (n.categorical) {  // the categories its bitset holds, one past them, and between them
        for (uint32_t c = 0; c <= std::min(n.bitset_words * 32, 128u); ++c)
          for (const float v : {static_cast<float>(c), c + 0.5f}) values[static_cast<size_t>(n.feature)].push_back(v);
        continue;
      }
      const auto near = static_cast<float>(n.threshold);
      for (const float v : {near, std::nextafter(near, -kInf), std::nextafter(near, kInf)})
        values[static_cast<size_t>(n.feature)].push_back(v);
    }
  return values;
}

std::vector<float> Rows(const Forest& f, size_t rows, std::mt19937& random) {
  const auto candidates = Candidates(f);
  std::vector<float> x(rows * f.num_features);
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < f.num_features; ++c) {
      const auto& pick = candidates[c];
      x[r * f.num_features + c] = pick[std::uniform_int_distribution<size_t>(0, pick.size() - 1)(random)];
    }
  return x;
}

void ExpectSameMargins(const Forest& f, const std::vector<float>& x, size_t rows, const std::string& what,
                       size_t max_nodes = Evaluator::kMaxNodes) {
  std::vector<double> reference(rows * f.num_outputs), fast(rows * f.num_outputs);
  f.Margins(x, rows, reference);
  const Evaluator evaluator(f, max_nodes);
  // Packed unless the forest has more nodes than allowed (then Margins is the reference itself).
  size_t nodes = 0;
  for (const Tree& t : f.trees) nodes += t.nodes.size();
  ASSERT_EQ(evaluator.packed(), nodes <= max_nodes) << what;
  evaluator.Margins(x, rows, fast);
  for (size_t i = 0; i < reference.size(); ++i)
    ASSERT_EQ(std::bit_cast<uint64_t>(fast[i]), std::bit_cast<uint64_t>(reference[i]))
        << what << ": row " << i / f.num_outputs << " output " << i % f.num_outputs << ": " << fast[i] << " instead of "
        << reference[i];
}

TEST(Evaluator, EqualsTheReferenceOnEveryCommittedModel) {
  size_t models = 0;
  for (const auto& dir :
       std::filesystem::directory_iterator(std::filesystem::path(SERVING_SOURCE_DIR) / "models" / "trees")) {
    if (!dir.is_directory()) continue;
    for (const auto& file : std::filesystem::directory_iterator(dir.path())) {
      auto forest = Load(file.path());
      ASSERT_TRUE(forest.ok()) << file.path() << ": " << forest.status().message();
      std::mt19937 random(7);
      // Batches that end before, on and after the evaluator's lanes (16) and blocks (256).
      for (const size_t rows : {1, 7, 15, 16, 17, 255, 256, 257, 300}) {
        const auto x = Rows(*forest, rows, random);
        ExpectSameMargins(*forest, x, rows, file.path().string() + " batch " + std::to_string(rows));
      }
      ++models;
    }
  }
  EXPECT_GE(models, 18u);
}

// One split at each edge threshold, under each library, missing-value rule and default direction, evaluated
// at the same edge values: the thresholds no trained model is likely to hold (0, infinities, the extremes of
// float) still decide as the reference does.
TEST(Evaluator, EqualsTheReferenceAtEdgeThresholds) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const std::vector<double> thresholds = {0.0,
                                          -0.0,
                                          kInf,
                                          -kInf,
                                          1e-35,
                                          static_cast<float>(1e-35f),
                                          -1e-35,
                                          std::numeric_limits<float>::max(),
                                          1e39,
                                          -1e39,
                                          std::numeric_limits<float>::denorm_min(),
                                          0.1,
                                          0.5};
  std::vector<float> x;
  for (const double t : thresholds)
    for (const float v : {static_cast<float>(t), std::nextafter(static_cast<float>(t), -INFINITY),
                          std::nextafter(static_cast<float>(t), INFINITY)})
      x.push_back(v);
  for (const float v : {std::nanf(""), 0.0f, -0.0f, 1e-36f, -1e-36f}) x.push_back(v);
  for (const Library library : {Library::kLightGbm, Library::kXgboost})
    for (const Missing missing : {Missing::kNone, Missing::kZero, Missing::kNaN})
      for (const bool default_left : {false, true})
        for (const double t : thresholds) {
          Forest f;
          f.library = library;
          f.num_features = 1;
          f.feature_names = {"x"};
          f.base_margin = {0};
          Node split;
          split.feature = 0;
          split.threshold = library == Library::kXgboost ? static_cast<float>(t) : t;
          split.missing = missing;
          split.default_left = default_left;
          split.left = 1;
          split.right = 2;
          Node left, right;
          left.value = 1;
          right.value = 2;
          f.trees.push_back({{split, left, right}, 0});
          ASSERT_TRUE(f.Check().ok());
          ExpectSameMargins(f, x, x.size(),
                            std::string(library == Library::kXgboost ? "xgboost" : "lightgbm") + " threshold " +
                                std::to_string(t) + " missing " + std::to_string(static_cast<int>(missing)) +
                                (default_left ? " default left" : ""));
        }
}

// The evaluator packs a feature index into 24 bits: a model with more features is refused at load, by Check().
TEST(Evaluator, ModelsWithMoreFeaturesThanItCanIndexAreRefused) {
  Forest f;
  f.num_features = Forest::kMaxFeatures + 1;
  f.base_margin = {0};
  Node leaf;
  leaf.value = 1;
  f.trees.push_back({{leaf}, 0});
  const Status status = f.Check();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("more than the 16777215 supported"), std::string::npos) << status.message();
}

// The packed layout addresses nodes by 32-bit byte offsets: a forest with more nodes than that is evaluated
// by the reference instead (the bound lowered here, to test the fallback without gigabytes of nodes).
TEST(Evaluator, FallsBackToTheReferenceBeyondItsNodeBound) {
  auto forest = Load(std::filesystem::path(SERVING_SOURCE_DIR) / "models" / "trees" / "lgb_multiclass" / "model.txt");
  ASSERT_TRUE(forest.ok()) << forest.status().message();
  size_t nodes = 0;
  for (const Tree& t : forest->trees) nodes += t.nodes.size();
  std::mt19937 random(11);
  const auto x = Rows(*forest, 40, random);
  ExpectSameMargins(*forest, x, 40, "at the bound", nodes);
  ExpectSameMargins(*forest, x, 40, "one node over the bound", nodes - 1);
}

// A tree that is a chain as deep as it has nodes (Check() allows it) is packed without recursion.
TEST(Evaluator, PacksADeepChainWithoutRecursion) {
  Forest f;
  f.library = Library::kXgboost;
  f.num_features = 1;
  f.feature_names = {"x"};
  f.base_margin = {0.5};
  Tree t;
  constexpr int kDepth = 200000;
  for (int i = 0; i < kDepth; ++i) {
    Node split;
    split.feature = 0;
    split.threshold = kDepth - i;  // x < threshold: deeper
    split.left = 2 * i + 2;
    split.right = 2 * i + 1;
    t.nodes.push_back(split);
    Node leaf;
    leaf.value = i;
    t.nodes.push_back(leaf);
  }
  Node last;
  last.value = -1;
  t.nodes.push_back(last);
  // Node 2i is a split, 2i+1 its leaf; the last split's left child is the final leaf.
  f.trees.push_back(std::move(t));
  ASSERT_TRUE(f.Check().ok()) << f.Check().message();
  const std::vector<float> x = {0.5f, 150000.5f, static_cast<float>(kDepth) + 1, std::nanf("")};
  ExpectSameMargins(f, x, x.size(), "chain");
}

}  // namespace
}  // namespace serving::trees
