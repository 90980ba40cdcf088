// A tree ensemble as LightGBM and XGBoost define it, and its exact evaluation. The parsers
// (lightgbm_model.h, xgboost_model.h) build a Forest from the file the library saved; Check() proves every
// index in it before the first row is evaluated, so Predict() reads nothing out of bounds whatever the file said.
//
// Exactness: each library's own comparison and precision. LightGBM compares the feature as a double with
// `value <= threshold` and sums the trees in double; XGBoost compares float32 with `value < threshold` and
// sums in float32, from its base margin. Missing values follow the library (see Node::missing).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"

namespace serving::trees {

enum class Library { kLightGbm, kXgboost };

// What turns the summed margins into the prediction the library's predict() returns.
enum class Link {
  kIdentity,  // regression, ranking, raw margins
  kSigmoid,   // binary logistic: 1 / (1 + exp(-scale * x)) per output
  kSoftmax,   // multiclass probabilities
  kExp,       // poisson, gamma, tweedie
  kSquare,    // LightGBM regression with `sqrt`: sign(x) * x^2
  kLog1pExp,  // LightGBM cross_entropy_lambda: log(1 + exp(x))
  kArgmax,    // XGBoost multi:softmax: the class index
  kHinge,     // XGBoost binary:hinge: 1 when x > 0, else 0
};

// Where a missing value goes (NaN; for LightGBM's kZero also zero): to the default child.
enum class Missing : uint8_t {
  kNone,  // LightGBM: NaN is read as 0 and compared
  kZero,  // LightGBM: 0 (|x| <= 1e-35) and NaN take the default child
  kNaN,   // NaN takes the default child
};

struct Node {
  int32_t feature = -1;  // -1: a leaf
  int32_t left = 0, right = 0;
  double threshold = 0;  // numerical: the library's threshold (XGBoost's float, widened exactly)
  double value = 0;      // a leaf's value
  Missing missing = Missing::kNone;
  bool default_left = false;
  bool categorical = false;  // LightGBM: left when the category's bit is set in the node's bitset; XGBoost: right
  uint32_t bitset_begin = 0, bitset_words = 0;  // into Forest::bitsets
};

struct Tree {
  std::vector<Node> nodes;  // nodes[0] is the root
  uint32_t output = 0;      // which margin the tree adds to (its class)
};

struct Forest {
  static constexpr uint32_t kMaxFeatures = (1u << 24) - 1;  // the evaluator packs a feature index in 24 bits
  // XGBoost's categories are 0 to 2^24 - 1 (a larger or negative value goes left, as in XGBoost); the category
  // bitsets of a model may take at most kMaxBitsetWords words, so that a small file cannot claim gigabytes.
  static constexpr int64_t kXgboostCategories = int64_t{1} << 24;
  static constexpr size_t kMaxBitsetWords = size_t{1} << 24;

  Library library = Library::kLightGbm;
  std::vector<Tree> trees;
  std::vector<uint32_t> bitsets;  // categorical splits' categories, 32 a word
  uint32_t num_features = 0;
  uint32_t num_outputs = 1;         // margins per row: 1, or the number of classes
  std::vector<double> base_margin;  // per output, added before the trees (XGBoost's base score as a margin)
  Link link = Link::kIdentity;
  double sigmoid_scale = 1;  // LightGBM's sigmoid parameter
  bool average = false;      // LightGBM random forest: margins divided by the iterations
  bool classifier = false;   // the objective predicts classes
  std::string objective;     // as the file names it, for errors and metadata
  std::vector<std::string> feature_names;

  // Every child, feature and bitset index in range, every tree a tree (no node reached twice), outputs in
  // range. A parser calls it last; a Forest that fails it is never evaluated.
  Status Check() const;

  // Whether `feature` goes to the node's left child, by the library's rule (the node must be a split).
  bool GoesLeft(const Node& n, float feature) const;

  // Margins of `rows` rows of num_features values each, row-major: rows x num_outputs, trees summed in file
  // order from base_margin (LightGBM: in double; XGBoost: in float32): the libraries' raw scores. The
  // reference evaluation, one row and one node at a time; Evaluator (evaluator.h) is the fast one.
  void Margins(std::span<const float> features, size_t rows, std::span<double> margins) const;
  // The library's prediction from margins (averaged first when `average`): rows x prediction_width() values.
  void Transform(std::span<const double> margins, size_t rows, std::span<double> out) const;
  // The width Transform leaves: 1 for kArgmax, else num_outputs.
  uint32_t prediction_width() const { return link == Link::kArgmax ? 1 : num_outputs; }
};

}  // namespace serving::trees
