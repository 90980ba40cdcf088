// The tree parsers and evaluator on small hand-written files: each library's decision rules at their edges,
// and hostile files refused with a reason (the end-to-end tests compare whole models with the libraries).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "backends/trees/lightgbm_model.h"
#include "backends/trees/xgboost_model.h"

namespace serving::trees {
namespace {

// `text` with the first `from` replaced by `to`.
std::string Replaced(std::string text, const std::string& from, const std::string& to) {
  return text.replace(text.find(from), from.size(), to);
}

// A parse that must fail with `words` in its reason.
void ExpectRefused(const StatusOr<Forest>& f, const std::string& words) {
  ASSERT_FALSE(f.ok()) << words;
  EXPECT_NE(f.status().message().find(words), std::string::npos) << words << " | " << f.status().message();
}

// One LightGBM tree of three leaves: node 0 splits feature 0 at `threshold` with `decision_type`; its right
// child, node 1, splits feature 1 at 0.5. Leaves: 10 (left of node 0), 20, 30.
std::string LightGbm(const std::string& threshold, int decision_type, const std::string& objective = "regression",
                     const std::string& extra_tree = "") {
  return "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx=1\n"
         "objective=" +
         objective +
         "\nfeature_names=a b\n\nTree=0\nnum_leaves=3\nnum_cat=" + std::string(extra_tree.empty() ? "0" : "1") +
         "\nsplit_feature=0 1\nthreshold=" + threshold + " 0.5\ndecision_type=" + std::to_string(decision_type) +
         " 0\nleft_child=-1 -2\nright_child=1 -3\n" + "leaf_value=10 20 30\n" + extra_tree +
         "is_linear=0\nshrinkage=1\n\n\nend of trees\n";
}

double Predict(const Forest& f, float a, float b = 0) {
  const float row[2] = {a, b};
  double margin = 0;
  f.Margins(row, 1, {&margin, 1});
  return margin;
}

TEST(LightGbm, ComparesAsDoublesWithLessOrEqual) {
  auto f = ParseLightGbm(LightGbm("0.10000000000000001", 0));
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->feature_names, (std::vector<std::string>{"a", "b"}));
  // 0.1f is 0.100000001490116..., above the double threshold 0.1: right. The float just below goes left.
  EXPECT_EQ(Predict(*f, 0.1f), 20);
  EXPECT_EQ(Predict(*f, std::nextafter(0.1f, 0.0f)), 10);
  auto exact = ParseLightGbm(LightGbm("0.5", 0));
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(Predict(*exact, 0.5f), 10);  // on the threshold: left
}

TEST(LightGbm, MissingTypes) {
  // decision_type: bit 1 default left, bits 2-3 missing type (0 none, 1 zero, 2 NaN).
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto none = ParseLightGbm(LightGbm("-1", 0));  // NaN reads as 0: 0 > -1, right
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(Predict(*none, nan), 20);
  auto nan_left = ParseLightGbm(LightGbm("-1", 2 | (2 << 2)));
  ASSERT_TRUE(nan_left.ok());
  EXPECT_EQ(Predict(*nan_left, nan), 10);
  EXPECT_EQ(Predict(*nan_left, 0), 20);
  auto zero_left = ParseLightGbm(LightGbm("-1", 2 | (1 << 2)));
  ASSERT_TRUE(zero_left.ok());
  EXPECT_EQ(Predict(*zero_left, 0), 10);
  EXPECT_EQ(Predict(*zero_left, nan), 10);
  EXPECT_EQ(Predict(*zero_left, 1e-35f), 10);  // LightGBM's zero is |x| <= 1e-35f
  EXPECT_EQ(Predict(*zero_left, 2e-35f), 20);
}

TEST(LightGbm, CategoricalBitsets) {
  // Categories 1 and 33 go left (bits 1 of word 0 and 1 of word 1).
  auto f = ParseLightGbm(LightGbm("0", 1, "regression", "cat_boundaries=0 2\ncat_threshold=2 2\n"));
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(Predict(*f, 1), 10);
  EXPECT_EQ(Predict(*f, 1.9f), 10);  // truncated to 1
  EXPECT_EQ(Predict(*f, 33), 10);
  EXPECT_EQ(Predict(*f, 2), 20);
  EXPECT_EQ(Predict(*f, 65), 20);  // past the bitset
  EXPECT_EQ(Predict(*f, -1), 20);
  EXPECT_EQ(Predict(*f, 1e20f), 20);  // out of int's range
  EXPECT_EQ(Predict(*f, std::numeric_limits<float>::quiet_NaN()), 20);
  EXPECT_EQ(Predict(*f, std::numeric_limits<float>::infinity()), 20);
}

TEST(LightGbm, HostileFilesAreRefusedWithAReason) {
  const std::string good = LightGbm("0.5", 0);
  const auto refused = [](const std::string& text, const std::string& words) {
    ExpectRefused(ParseLightGbm(text), words);
  };
  refused("", "not a LightGBM");
  refused(good.substr(0, good.size() / 2), "end of trees");
  refused(LightGbm("0.5", 0, "mystery"), "objective 'mystery'");
  refused(LightGbm("nan", 0), "NaN threshold");
  refused(LightGbm("0.5", 3 << 2), "no missing type");
  refused(LightGbm("7", 1, "regression", "cat_boundaries=0 2\ncat_threshold=2 2\n"), "names bitset");
  refused(LightGbm("0", 1, "regression", "cat_boundaries=0 9\ncat_threshold=2 2\n"), "cat_boundaries");
  refused(Replaced(good, "left_child=-1 -2", "left_child=-1 -9"), "outside the tree");
  refused(Replaced(good, "right_child=1 -3", "right_child=1 -2"), "reached twice");
  refused(Replaced(good, "right_child=1 -3", "right_child=0 -3"), "outside the tree");
  refused(Replaced(good, "split_feature=0 1", "split_feature=0 2"), "splits on feature 2 of 2");
  refused(Replaced(good, "leaf_value=10 20 30", "leaf_value=10 20"), "values, not 3");
  refused(Replaced(good, "leaf_value=10 20 30", "leaf_value=10 20 inf"), "not finite");
  refused(Replaced(good, "is_linear=0", "is_linear=1"), "linear trees are not supported");
  refused(Replaced(good, "num_tree_per_iteration=1", "num_tree_per_iteration=2"), "not a multiple");
}

TEST(LightGbm, Objectives) {
  auto binary = ParseLightGbm(LightGbm("0.5", 0, "binary sigmoid:2"));
  ASSERT_TRUE(binary.ok());
  std::vector<double> margin = {0.25}, out(1);
  binary->Transform(margin, 1, out);
  EXPECT_DOUBLE_EQ(out[0], 1.0 / (1.0 + std::exp(-0.5)));
  auto sqrt = ParseLightGbm(LightGbm("0.5", 0, "regression sqrt"));
  ASSERT_TRUE(sqrt.ok());
  margin = {-3};
  sqrt->Transform(margin, 1, out);
  EXPECT_DOUBLE_EQ(out[0], -9);
}

// One XGBoost tree: node 0 splits feature 0 at `threshold` (NaN default `default_left`), leaves -1 and 1.
std::string Xgboost(const std::string& threshold, int default_left, const std::string& objective = "reg:squarederror",
                    const std::string& base_score = "\"5E-1\"") {
  return R"({"learner":{"attributes":{},"feature_names":[],"gradient_booster":{"name":"gbtree","model":{
    "gbtree_model_param":{"num_parallel_tree":"1","num_trees":"1"},"tree_info":[0],"trees":[{
    "tree_param":{"num_nodes":"3","size_leaf_vector":"1","num_feature":"2"},
    "left_children":[1,-1,-1],"right_children":[2,-1,-1],"split_indices":[0,0,0],
    "split_conditions":[)" +
         threshold + R"(,-1,1],"default_left":[)" + std::to_string(default_left) +
         R"(,0,0],"split_type":[0,0,0]}]}},
    "learner_model_param":{"base_score":)" +
         base_score + R"(,"num_class":"0","num_feature":"2","num_target":"1"},
    "objective":{"name":")" +
         objective + R"("}},"version":[3,0,0]})";
}

TEST(Xgboost, ComparesAsFloatsWithLessThan) {
  auto f = ParseXgboostJson(Xgboost("0.1", 0));
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->feature_names, (std::vector<std::string>{"f0", "f1"}));
  EXPECT_EQ(Predict(*f, 0.1f), 0.5 + 1);  // on the float threshold: not less, right
  EXPECT_EQ(Predict(*f, std::nextafter(0.1f, 0.0f)), 0.5 - 1);
  EXPECT_EQ(Predict(*f, std::numeric_limits<float>::quiet_NaN()), 0.5 + 1);
  auto left = ParseXgboostJson(Xgboost("0.1", 1));
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(Predict(*left, std::numeric_limits<float>::quiet_NaN()), 0.5 - 1);
}

TEST(Xgboost, BaseScoreBecomesAMargin) {
  auto f = ParseXgboostJson(Xgboost("0.1", 0, "binary:logistic", "\"[2.5E-1]\""));
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_FLOAT_EQ(static_cast<float>(f->base_margin[0]), -std::log(1.0f / 0.25f - 1.0f));
  auto poisson = ParseXgboostJson(Xgboost("0.1", 0, "count:poisson", "\"2\""));
  ASSERT_TRUE(poisson.ok());
  EXPECT_FLOAT_EQ(static_cast<float>(poisson->base_margin[0]), std::log(2.0f));
}

TEST(Xgboost, HostileFilesAreRefusedWithAReason) {
  const auto refused = [](const std::string& text, const std::string& words) {
    ExpectRefused(ParseXgboostJson(text), words);
  };
  refused("", "not valid JSON");
  refused("{}", "no 'learner'");
  refused(std::string(100000, '[') + std::string(100000, ']'), "nests deeper");
  refused(Xgboost("0.1", 0, "mystery"), "objective 'mystery'");
  refused(Xgboost("0.1", 0, "reg:squarederror", "\"x\""), "base_score");
  refused(Xgboost("\"a\"", 0), "not a number");
  const std::string good = Xgboost("0.1", 0);
  refused(Replaced(good, "\"left_children\":[1,-1,-1]", "\"left_children\":[7,-1,-1]"), "outside");
  refused(Replaced(good, "\"left_children\":[1,-1,-1]", "\"left_children\":[0,-1,-1]"), "outside");
  refused(Replaced(good, "\"left_children\":[1,-1,-1]", "\"left_children\":[1e300,-1,-1]"), "not an index");
  refused(Replaced(good, "\"left_children\":[1,-1,-1]", "\"left_children\":[1.5,-1,-1]"), "not an index");
  refused(Replaced(good, "\"right_children\":[2,-1,-1]", "\"right_children\":[1,-1,-1]"), "twice");
  refused(Replaced(good, "\"split_indices\":[0,0,0]", "\"split_indices\":[5,0,0]"), "feature 5 of 2");
  refused(Replaced(good, R"("num_nodes":"3")", R"("num_nodes":"4")"), "for 4 nodes");
  refused(Replaced(good, "\"split_type\":[0,0,0]", "\"split_type\":[1,0,0]"), "no categories array");
  refused(Replaced(good, "\"split_type\":[0,0,0]", "\"split_type\":[2,0,0]"), "split_type 2");
  const auto categorical = [&](const std::string& fields) {
    return Replaced(good, "\"split_type\":[0,0,0]", "\"split_type\":[1,0,0]," + fields);
  };
  const std::string lists = R"("categories_nodes":[0],"categories_segments":[0],"categories_sizes":[2])";
  refused(categorical(R"("categories":[1,3],"categories_nodes":[],"categories_segments":[],"categories_sizes":[])"),
          "categorical split without categories");
  refused(categorical(R"("categories":[1,3],"categories_nodes":[1],"categories_segments":[0],"categories_sizes":[2])"),
          "not a categorical split");
  refused(categorical(R"("categories":[1,3],"categories_nodes":[0,0],"categories_segments":[0,0],)"
                      R"("categories_sizes":[1,1])"),
          "two category lists");
  refused(categorical(R"("categories":[1,3],"categories_nodes":[0],"categories_segments":[1],"categories_sizes":[2])"),
          "outside the tree's 2");
  refused(categorical(R"("categories":[1,-3],)" + lists), "category -3");
  refused(categorical(R"("categories":[1,16777216],)" + lists), "category 16777216");
  refused(
      categorical(R"("categories":[1,3],"categories_nodes":[0],"categories_segments":[0],"categories_sizes":[1,1])"),
      "2 values for 1 nodes");
  refused(Replaced(good, "\"tree_info\":[0]", "\"tree_info\":[3]"), "tree_info");
  refused(Replaced(good, R"("name":"gbtree")", R"("name":"gblinear")"), "not supported");
}

// XGBoost's categorical split: the listed categories go right; every other value left, negative ones and
// those from 2^24 on included; a value is truncated to its category; NaN takes the default child.
TEST(Xgboost, CategoricalSplitsSendTheirCategoriesRight) {
  const std::string text = Replaced(Xgboost("1E-45", 0), "\"split_type\":[0,0,0]",
                                    R"("split_type":[1,0,0],"categories":[1,3,40],"categories_nodes":[0],)"
                                    R"("categories_segments":[0],"categories_sizes":[3])");
  auto f = ParseXgboostJson(text);
  ASSERT_TRUE(f.ok()) << f.status().message();
  for (const float right : {1.0f, 3.0f, 3.9f, 40.0f, 40.5f}) EXPECT_EQ(Predict(*f, right), 0.5 + 1) << right;
  for (const float left : {0.0f, -0.0f, 2.0f, 0.5f, 39.0f, 41.0f, 64.0f, -1.0f, -0.5f, 16777216.0f, 1e20f, -1e20f})
    EXPECT_EQ(Predict(*f, left), 0.5 - 1) << left;
  EXPECT_EQ(Predict(*f, std::numeric_limits<float>::quiet_NaN()), 0.5 + 1);
}

// A category bitset takes a word per 32 categories: a file listing the largest category at many splits is
// refused before it can claim gigabytes.
TEST(Xgboost, CategoryBitsetsAreBounded) {
  std::string trees, info;
  for (int i = 0; i < 40; ++i) {
    trees += std::string(i ? "," : "") +
             R"({"tree_param":{"num_nodes":"3","size_leaf_vector":"1","num_feature":"2"},)"
             R"("left_children":[1,-1,-1],"right_children":[2,-1,-1],"split_indices":[0,0,0],)"
             R"("split_conditions":[0,-1,1],"default_left":[0,0,0],"split_type":[1,0,0],)"
             R"("categories":[16777215],"categories_nodes":[0],"categories_segments":[0],"categories_sizes":[1]})";
    info += std::string(i ? "," : "") + "0";
  }
  std::string text = Xgboost("0", 0);
  const auto begin = text.find("\"trees\":[") + 9;
  text = text.substr(0, begin) + trees + text.substr(text.find("]}}", begin));
  text = Replaced(text, "\"tree_info\":[0]", "\"tree_info\":[" + info + "]");
  text = Replaced(text, R"("num_trees":"1")", R"("num_trees":"40")");
  ExpectRefused(ParseXgboostJson(text), "MiB of category bitsets");
}

TEST(Xgboost, HostileUbjsonIsRefusedWithoutRecursingOrGrowingWithoutBound) {
  const auto refused = [](const std::string& bytes, const std::string& words) {
    ExpectRefused(ParseXgboostUbjson(bytes), words);
  };
  refused(std::string(1000000, '['), "nests deeper");
  // A typed array of 2^62 nulls: no bytes per element.
  refused(std::string("[$Z#L\x40\0\0\0\0\0\0\0", 13), "more values than bytes");
  refused("{i\x07learner", "not valid UBJSON");
  refused("{}", "no 'learner'");
  // A booster name that is not UTF-8 (found by make fuzz: printing it threw).
  const std::string name = "\xff\xfe";
  refused(
      "{i\x07learner{i\x13learner_model_param{}i\x10gradient_booster{i\x04nameS" + std::string("i\x02") + name + "}}}",
      "is not supported");
}

}  // namespace
}  // namespace serving::trees
