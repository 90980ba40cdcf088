#include "backends/trees/forest.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace serving::trees {
namespace {

// LightGBM's kZeroThreshold: values this close to 0 count as zero for missing_type Zero. LightGBM writes it as
// the float literal 1e-35f, which as a double is 1.0000000180025095e-35, not 1e-35.
constexpr double kZeroThreshold = 1e-35f;

std::string Where(size_t tree, size_t node) { return "tree " + std::to_string(tree) + " node " + std::to_string(node); }

// Whether `category` is in the node's bitset.
bool InBitset(const Forest& f, const Node& n, uint64_t category) {
  const uint64_t word = category / 32;
  return word < n.bitset_words && ((f.bitsets[n.bitset_begin + word] >> (category % 32)) & 1u);
}

// LightGBM's categorical decision: the categories in the bitset go left. The category is the value truncated
// to int (as LightGBM's static_cast does; values beyond int's range read as negative there, as on x86);
// negative and NaN go right.
bool CategoryGoesLeft(const Forest& f, const Node& n, double x) {
  if (std::isnan(x) || !(x > -2147483649.0 && x < 2147483648.0)) return false;
  const auto category = static_cast<int64_t>(x);  // truncates toward zero, as static_cast<int> does
  if (category < 0) return false;
  return InBitset(f, n, static_cast<uint64_t>(category));
}

double Leaf(const Forest& f, const Tree& t, const float* row) {
  const Node* n = &t.nodes[0];
  while (n->feature >= 0) n = &t.nodes[f.GoesLeft(*n, row[n->feature]) ? n->left : n->right];
  return n->value;
}

}  // namespace

bool Forest::GoesLeft(const Node& n, float feature) const {
  if (library == Library::kXgboost) {
    // XGBoost: NaN is missing and takes the default child; otherwise float32 `value < threshold` goes left.
    if (std::isnan(feature)) return n.default_left;
    // A categorical split sends its listed categories right and every other value left, a negative one or
    // one past XGBoost's categories included (its Decision); a category is the value truncated, as XGBoost's
    // cast does.
    if (n.categorical)
      return feature < 0 || feature >= static_cast<float>(kXgboostCategories) ||
             !InBitset(*this, n, static_cast<uint64_t>(static_cast<int32_t>(feature)));
    return feature < static_cast<float>(n.threshold);
  }
  // LightGBM: NumericalDecision / CategoricalDecision of its Tree.
  double x = feature;
  if (n.categorical) return CategoryGoesLeft(*this, n, x);
  if (std::isnan(x) && n.missing != Missing::kNaN) x = 0.0;
  if ((n.missing == Missing::kZero && x >= -kZeroThreshold && x <= kZeroThreshold) ||
      (n.missing == Missing::kNaN && std::isnan(x)))
    return n.default_left;
  return x <= n.threshold;
}

Status Forest::Check() const {
  if (num_outputs == 0) return InvalidArgument("the model has no outputs");
  if (base_margin.size() != num_outputs)
    return InvalidArgument("the model has " + std::to_string(base_margin.size()) + " base margins for " +
                           std::to_string(num_outputs) + " outputs");
  if (trees.empty()) return InvalidArgument("the model has no trees");
  if (num_features > kMaxFeatures)
    return InvalidArgument("the model has " + std::to_string(num_features) + " features, more than the " +
                           std::to_string(kMaxFeatures) + " supported");
  if (feature_names.size() != num_features)
    return InvalidArgument("the model names " + std::to_string(feature_names.size()) + " features but has " +
                           std::to_string(num_features));
  for (size_t i = 0; i < trees.size(); ++i) {
    const Tree& t = trees[i];
    if (t.nodes.empty()) return InvalidArgument("tree " + std::to_string(i) + " has no nodes");
    if (t.output >= num_outputs)
      return InvalidArgument("tree " + std::to_string(i) + " adds to output " + std::to_string(t.output) + " of " +
                             std::to_string(num_outputs));
    // Every node reached exactly once from the root: no cycle, no shared child, so evaluation ends.
    std::vector<bool> reached(t.nodes.size(), false);
    std::vector<int32_t> stack = {0};
    reached[0] = true;
    size_t visited = 0;
    while (!stack.empty()) {
      const auto at = static_cast<size_t>(stack.back());
      stack.pop_back();
      ++visited;
      const Node& n = t.nodes[at];
      if (n.feature < 0) {
        if (!std::isfinite(n.value)) return InvalidArgument(Where(i, at) + " has a leaf value that is not finite");
        continue;
      }
      if (static_cast<uint32_t>(n.feature) >= num_features)
        return InvalidArgument(Where(i, at) + " splits on feature " + std::to_string(n.feature) + " of " +
                               std::to_string(num_features));
      if (n.categorical && (n.bitset_begin > bitsets.size() || n.bitset_words > bitsets.size() - n.bitset_begin))
        return InvalidArgument(Where(i, at) + " has a category bitset outside the model's");
      if (!n.categorical && std::isnan(n.threshold)) return InvalidArgument(Where(i, at) + " has a NaN threshold");
      for (const int32_t child : {n.left, n.right}) {
        if (child <= 0 || static_cast<size_t>(child) >= t.nodes.size())
          return InvalidArgument(Where(i, at) + " has child " + std::to_string(child) + " outside the tree's " +
                                 std::to_string(t.nodes.size()) + " nodes");
        if (reached[static_cast<size_t>(child)])
          return InvalidArgument(Where(i, at) + ": node " + std::to_string(child) +
                                 " is reached twice (the nodes do not form a tree)");
        reached[static_cast<size_t>(child)] = true;
        stack.push_back(child);
      }
    }
    if (visited != t.nodes.size())
      return InvalidArgument("tree " + std::to_string(i) + " has " + std::to_string(t.nodes.size() - visited) +
                             " nodes the root does not reach");
  }
  return Status::Ok();
}

void Forest::Margins(std::span<const float> features, size_t rows, std::span<double> margins) const {
  std::vector<float> acc(library == Library::kXgboost ? num_outputs : 0);
  for (size_t r = 0; r < rows; ++r) {
    const float* row = features.data() + r * num_features;
    double* out = margins.data() + r * num_outputs;
    if (library == Library::kLightGbm) {
      for (uint32_t k = 0; k < num_outputs; ++k) out[k] = base_margin[k];
      for (const Tree& t : trees) out[t.output] += Leaf(*this, t, row);
    } else {
      // XGBoost's CPU predictor adds each tree's leaf to a float32 sum that starts at the base margin.
      for (uint32_t k = 0; k < num_outputs; ++k) acc[k] = static_cast<float>(base_margin[k]);
      for (const Tree& t : trees) acc[t.output] += static_cast<float>(Leaf(*this, t, row));
      for (uint32_t k = 0; k < num_outputs; ++k) out[k] = acc[k];
    }
  }
}

void Forest::Transform(std::span<const double> margins, size_t rows, std::span<double> out) const {
  const uint32_t k = num_outputs;
  const size_t whole_iterations = trees.size() / num_outputs;
  const auto iterations = static_cast<double>(whole_iterations);
  std::vector<double> averaged(average ? k : 0);
  for (size_t r = 0; r < rows; ++r) {
    const double* m = margins.data() + r * k;
    if (average) {  // LightGBM's random forest: the raw score is the sum, the prediction its mean
      for (uint32_t i = 0; i < k; ++i) averaged[i] = m[i] / iterations;
      m = averaged.data();
    }
    double* o = out.data() + r * prediction_width();
    switch (link) {
      case Link::kIdentity: std::copy(m, m + k, o); break;
      case Link::kSigmoid:
        for (uint32_t i = 0; i < k; ++i) o[i] = 1.0 / (1.0 + std::exp(-sigmoid_scale * m[i]));
        break;
      case Link::kSoftmax: {
        const double top = *std::max_element(m, m + k);
        double sum = 0;
        for (uint32_t i = 0; i < k; ++i) sum += (o[i] = std::exp(m[i] - top));
        for (uint32_t i = 0; i < k; ++i) o[i] /= sum;
        break;
      }
      case Link::kExp:
        for (uint32_t i = 0; i < k; ++i) o[i] = std::exp(m[i]);
        break;
      case Link::kSquare:
        for (uint32_t i = 0; i < k; ++i) o[i] = (m[i] < 0 ? -1.0 : 1.0) * m[i] * m[i];
        break;
      case Link::kLog1pExp:
        for (uint32_t i = 0; i < k; ++i) o[i] = std::log1p(std::exp(m[i]));
        break;
      case Link::kArgmax: o[0] = static_cast<double>(std::max_element(m, m + k) - m); break;
      case Link::kHinge:
        for (uint32_t i = 0; i < k; ++i) o[i] = m[i] > 0 ? 1.0 : 0.0;
        break;
    }
  }
}

}  // namespace serving::trees
