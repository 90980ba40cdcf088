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
  auto f = static_cast<float>(t);
  if (static_cast<double>(f) > t) f = std::nextafter(f, -kInf);
  return f;
}

// For a float x that is not NaN, x < t exactly when x <= the float before t; nothing is below -inf, and
// `x <= NaN` is false for every x.
float FloatBelow(float t) {
  if (t == -kInf) return std::numeric_limits<float>::quiet_NaN();
  return std::nextafter(t, -kInf);
}

// Rows evaluated together (a block: its rows and the trees in cache), and rows that walk one tree at the same
// time (more overlap their reads; chosen by measurement, docs/benchmarks.md#tree-ensembles).
constexpr size_t kBlockRows = 256;
constexpr size_t kLanes = 16;

}  // namespace

Evaluator::Evaluator(const Forest& forest) : forest_(forest) {
  trees_.reserve(forest.trees.size());
  for (const Tree& t : forest.trees) trees_.push_back(Pack(t));
}

// Packs the tree depth-first (a node's left subtree follows it) without recursion (a checked tree may still
// be a chain as deep as it has nodes).
Evaluator::PackedTree Evaluator::Pack(const Tree& tree) {
  struct Pending {
    int32_t at;      // the reference node
    int32_t parent;  // the packed parent, -1 for the root
    bool left;       // which of the parent's children it is
    uint32_t depth;
  };
  PackedTree packed_tree{static_cast<int32_t>(nodes_.size()), tree.output, 0};
  std::vector<Pending> stack = {{0, -1, false, 0}};
  const bool lightgbm = forest_.library == Library::kLightGbm;
  while (!stack.empty()) {
    const Pending p = stack.back();
    stack.pop_back();
    const Node& n = tree.nodes[static_cast<size_t>(p.at)];
    const auto index = static_cast<int32_t>(nodes_.size());
    PackedNode packed{0, 0, {index, index}};  // a leaf: its own children
    if (n.feature >= 0) {
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
      stack.push_back({n.right, index, false, p.depth + 1});  // popped after the whole left subtree
      stack.push_back({n.left, index, true, p.depth + 1});
    } else {
      packed_tree.depth = std::max(packed_tree.depth, p.depth);
    }
    nodes_.push_back(packed);
    values_.push_back(n.feature >= 0 ? 0.0 : n.value);
    if (p.parent >= 0) {
      PackedNode& parent = nodes_[static_cast<size_t>(p.parent)];
      parent.child[p.left ? 0 : 1] = index;
    }
  }
  return packed_tree;
}

template <bool kSpecials, bool kNan>
inline int32_t Evaluator::Next(const PackedNode& n, float x) const {
  if constexpr (kSpecials) {
    if (n.feature & kSpecial) [[unlikely]]
      return n.child[forest_.GoesLeft(*specials_[std::bit_cast<uint32_t>(n.threshold)], x) ? 0 : 1];
  }
  // Bitwise, not short-circuit: no branch to mispredict on the data. (A leaf goes to itself either way.)
  auto left = static_cast<uint32_t>(x <= n.threshold);
  if constexpr (kNan) left |= (n.feature >> 31) & static_cast<uint32_t>(std::isnan(x));
  return n.child[left ^ 1u];
}

// Adds every tree's leaf to `sums` (count x num_outputs, already holding the base margins) for `count` rows.
template <bool kSpecials, bool kNan, typename Sum>
void Evaluator::Block(const float* rows, size_t count, Sum* sums) const {
  const size_t width = forest_.num_features;
  const size_t k = forest_.num_outputs;
  const size_t whole = count - count % kLanes;  // rows in whole groups of kLanes
  for (const PackedTree& t : trees_) {
    if (t.depth == 0) {
      const auto leaf = static_cast<Sum>(values_[static_cast<size_t>(t.root)]);
      for (size_t r = 0; r < whole; ++r) sums[r * k + t.output] += leaf;
      continue;
    }
    // kLanes rows walk the tree together, depth steps each; one that reaches its leaf early stays there.
    for (size_t r = 0; r < whole; r += kLanes) {
      int32_t at[kLanes];
      std::fill(at, at + kLanes, t.root);
      for (uint32_t step = 0; step < t.depth; ++step) {
        for (size_t l = 0; l < kLanes; ++l) {
          const PackedNode& n = nodes_[static_cast<size_t>(at[l])];
          at[l] = Next<kSpecials, kNan>(n, rows[(r + l) * width + (n.feature & kFeatureMask)]);
        }
      }
      for (size_t l = 0; l < kLanes; ++l)
        sums[(r + l) * k + t.output] += static_cast<Sum>(values_[static_cast<size_t>(at[l])]);
    }
  }
  // The rows left over (a batch of one, say) walk kLanes trees at once instead, as many steps as the deepest
  // of them; their leaves are then added in tree order.
  for (size_t r = whole; r < count; ++r) {
    const float* row = rows + r * width;
    Sum* sum = sums + r * k;
    size_t first = 0;
    for (; first + kLanes <= trees_.size(); first += kLanes) {
      int32_t at[kLanes];
      uint32_t depth = 0;
      for (size_t l = 0; l < kLanes; ++l) {
        at[l] = trees_[first + l].root;
        depth = std::max(depth, trees_[first + l].depth);
      }
      for (uint32_t step = 0; step < depth; ++step) {
        for (int32_t& a : at) {
          const PackedNode& n = nodes_[static_cast<size_t>(a)];
          a = Next<kSpecials, kNan>(n, row[n.feature & kFeatureMask]);
        }
      }
      for (size_t l = 0; l < kLanes; ++l)
        sum[trees_[first + l].output] += static_cast<Sum>(values_[static_cast<size_t>(at[l])]);
    }
    for (; first < trees_.size(); ++first) {
      int32_t at = trees_[first].root;
      for (uint32_t step = 0; step < trees_[first].depth; ++step) {
        const PackedNode& n = nodes_[static_cast<size_t>(at)];
        at = Next<kSpecials, kNan>(n, row[n.feature & kFeatureMask]);
      }
      sum[trees_[first].output] += static_cast<Sum>(values_[static_cast<size_t>(at)]);
    }
  }
}

template <typename Sum>
void Evaluator::AddTrees(const float* rows, size_t count, Sum* sums) const {
  const size_t values = count * forest_.num_features;
  const bool nan = std::any_of(rows, rows + values, [](float v) { return std::isnan(v); });
  if (!specials_.empty()) {
    Block<true, true>(rows, count, sums);
  } else if (nan) {
    Block<false, true>(rows, count, sums);
  } else {
    Block<false, false>(rows, count, sums);
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
      AddTrees(block, count, out);
    } else {
      for (size_t r = 0; r < count; ++r)
        for (size_t i = 0; i < k; ++i) sums[r * k + i] = static_cast<float>(forest_.base_margin[i]);
      AddTrees(block, count, sums.data());
      std::copy(sums.begin(), sums.begin() + static_cast<std::ptrdiff_t>(count * k), out);
    }
  }
}

}  // namespace serving::trees
