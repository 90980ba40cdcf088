#include "backends/trees/evaluator.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

namespace serving::trees {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// The largest float f with f <= t: for a float x, (double)x <= t exactly when x <= f.
float FloatAtOrBelow(double t) {
  float f = static_cast<float>(t);
  if (static_cast<double>(f) > t) f = std::nextafter(f, -kInf);
  return f;
}

// For a float x that is not NaN, x < t exactly when x <= the float before t; nothing is below -inf, and
// `x <= NaN` is false for every x.
float FloatBelow(float t) {
  if (t == -kInf) return std::numeric_limits<float>::quiet_NaN();
  return std::nextafter(t, -kInf);
}

// Rows evaluated together, and rows that walk one tree at the same time.
constexpr size_t kBlockRows = 64;
constexpr size_t kLanes = 8;

}  // namespace

Evaluator::Evaluator(const Forest& forest) : forest_(forest) {
  trees_.reserve(forest.trees.size());
  for (const Tree& t : forest.trees) trees_.push_back({Pack(t), t.output});
}

// Packs the tree's internal nodes depth-first (a node's left subtree follows it) without recursion (a checked
// tree may still be a chain as deep as it has nodes) and returns the root as a child index.
int32_t Evaluator::Pack(const Tree& tree) {
  struct Pending {
    int32_t at;      // the reference node
    int32_t parent;  // the packed parent, -1 for the root
    bool left;       // which of the parent's children it is
  };
  int32_t root = 0;
  std::vector<Pending> stack = {{0, -1, false}};
  const bool lightgbm = forest_.library == Library::kLightGbm;
  while (!stack.empty()) {
    const Pending p = stack.back();
    stack.pop_back();
    const Node& n = tree.nodes[static_cast<size_t>(p.at)];
    int32_t index = 0;
    if (n.feature < 0) {
      leaves_.push_back(n.value);
      index = ~static_cast<int32_t>(leaves_.size() - 1);
    } else {
      PackedNode packed{};
      packed.feature = static_cast<uint32_t>(n.feature);
      if (n.categorical || (lightgbm && n.missing == Missing::kZero)) {
        packed.feature |= kSpecial;
        packed.threshold = std::bit_cast<float>(static_cast<uint32_t>(specials_.size()));
        specials_.push_back(&n);
      } else if (lightgbm) {
        packed.threshold = FloatAtOrBelow(n.threshold);
        // missing_type None reads NaN as 0 and compares it; NaN takes the default child.
        const bool nan_left = n.missing == Missing::kNaN ? n.default_left : 0.0 <= n.threshold;
        if (nan_left) packed.feature |= kNanLeft;
      } else {
        packed.threshold = FloatBelow(static_cast<float>(n.threshold));
        if (n.default_left) packed.feature |= kNanLeft;
      }
      index = static_cast<int32_t>(nodes_.size());
      nodes_.push_back(packed);
      stack.push_back({n.right, index, false});  // popped after the whole left subtree
      stack.push_back({n.left, index, true});
    }
    if (p.parent < 0) {
      root = index;
    } else {
      PackedNode& parent = nodes_[static_cast<size_t>(p.parent)];
      (p.left ? parent.left : parent.right) = index;
    }
  }
  return root;
}

inline int32_t Evaluator::Next(const PackedNode& n, float x) const {
  if (n.feature & kSpecial) [[unlikely]] {
    return forest_.GoesLeft(*specials_[std::bit_cast<uint32_t>(n.threshold)], x) ? n.left : n.right;
  }
  const bool left = x <= n.threshold || ((n.feature & kNanLeft) != 0 && std::isnan(x));
  return left ? n.left : n.right;
}

// Adds every tree's leaf to `sums` (count x num_outputs, already holding the base margins) for `count` rows.
template <typename Sum>
void Evaluator::Block(const float* rows, size_t count, Sum* sums) const {
  const size_t width = forest_.num_features;
  const size_t k = forest_.num_outputs;
  for (const PackedTree& t : trees_) {
    if (t.root < 0) {
      const auto leaf = static_cast<Sum>(leaves_[static_cast<size_t>(~t.root)]);
      for (size_t r = 0; r < count; ++r) sums[r * k + t.output] += leaf;
      continue;
    }
    size_t r = 0;
    for (; r + kLanes <= count; r += kLanes) {
      int32_t at[kLanes];
      for (size_t l = 0; l < kLanes; ++l) at[l] = t.root;
      for (bool walking = true; walking;) {
        walking = false;
        for (size_t l = 0; l < kLanes; ++l) {
          if (at[l] < 0) continue;
          const PackedNode& n = nodes_[static_cast<size_t>(at[l])];
          at[l] = Next(n, rows[(r + l) * width + (n.feature & kFeatureMask)]);
          walking |= at[l] >= 0;
        }
      }
      for (size_t l = 0; l < kLanes; ++l)
        sums[(r + l) * k + t.output] += static_cast<Sum>(leaves_[static_cast<size_t>(~at[l])]);
    }
    for (; r < count; ++r) {
      const float* row = rows + r * width;
      int32_t at = t.root;
      while (at >= 0) {
        const PackedNode& n = nodes_[static_cast<size_t>(at)];
        at = Next(n, row[n.feature & kFeatureMask]);
      }
      sums[r * k + t.output] += static_cast<Sum>(leaves_[static_cast<size_t>(~at)]);
    }
  }
}

void Evaluator::Margins(std::span<const float> features, size_t rows, std::span<double> margins) const {
  const size_t k = forest_.num_outputs;
  const size_t width = forest_.num_features;
  // LightGBM sums in double (straight into the margins); XGBoost in float32, from its base margin.
  std::vector<float> sums(forest_.library == Library::kXgboost ? kBlockRows * k : 0);
  for (size_t begin = 0; begin < rows; begin += kBlockRows) {
    const size_t count = std::min(kBlockRows, rows - begin);
    const float* block = features.data() + begin * width;
    double* out = margins.data() + begin * k;
    if (forest_.library == Library::kLightGbm) {
      for (size_t r = 0; r < count; ++r) std::copy(forest_.base_margin.begin(), forest_.base_margin.end(), out + r * k);
      Block(block, count, out);
    } else {
      for (size_t r = 0; r < count; ++r)
        for (size_t i = 0; i < k; ++i) sums[r * k + i] = static_cast<float>(forest_.base_margin[i]);
      Block(block, count, sums.data());
      std::copy(sums.begin(), sums.begin() + static_cast<std::ptrdiff_t>(count * k), out);
    }
  }
}

}  // namespace serving::trees
