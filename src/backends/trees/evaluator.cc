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

Evaluator::Evaluator(const Forest& forest, size_t max_nodes) : forest_(forest) {
  size_t nodes = 0;
  for (const Tree& t : forest.trees) nodes += t.nodes.size();
  if (nodes > std::min(max_nodes, kMaxNodes)) return;  // Margins falls back to the reference evaluation
  nodes_.reserve(nodes);
  trees_.reserve(forest.trees.size());
  for (const Tree& t : forest.trees) trees_.push_back(Pack(t));
  packed_ = true;
}

Evaluator::Layout Evaluator::layout() const {
  size_t nodes = 0;
  for (const Tree& t : forest_.trees) nodes += t.nodes.size();
  uint32_t depth = 0;
  for (const PackedTree& t : trees_) depth = std::max(depth, t.depth);
  return {packed_, nodes, depth, specials_.size()};
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
  PackedTree packed_tree{Offset(nodes_.size()), tree.output, 0};
  std::vector<Pending> stack = {{0, -1, false, 0}};
  const bool lightgbm = forest_.library == Library::kLightGbm;
  while (!stack.empty()) {
    const Pending p = stack.back();
    stack.pop_back();
    const Node& n = tree.nodes[static_cast<size_t>(p.at)];
    const uint32_t self = Offset(nodes_.size());
    PackedNode packed{0, 0, {self, self}};  // a leaf: its own children
    if (n.feature >= 0) {
      packed.feature = static_cast<uint32_t>(n.feature) * kLanes;
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
      stack.push_back({n.right, static_cast<int32_t>(nodes_.size()), false, p.depth + 1});  // after the left subtree
      stack.push_back({n.left, static_cast<int32_t>(nodes_.size()), true, p.depth + 1});
    } else {
      packed_tree.depth = std::max(packed_tree.depth, p.depth);
    }
    nodes_.push_back(packed);
    values_.push_back(n.feature >= 0 ? 0.0 : n.value);
    if (p.parent >= 0) nodes_[static_cast<size_t>(p.parent)].child[p.left ? 0 : 1] = self;
  }
  return packed_tree;
}

template <bool kSpecials, bool kNan, size_t kStride>
inline uint32_t Evaluator::Next(uint32_t at, const float* x) const {
  const PackedNode& n = At(at);
  const float v = x[(n.feature & kFeatureMask) / kStride];
  if constexpr (kSpecials) {
    if (n.feature & kSpecial) [[unlikely]]
      return n.child[forest_.GoesLeft(*specials_[std::bit_cast<uint32_t>(n.threshold)], v) ? 0 : 1];
  }
  // Bitwise, not short-circuit: no branch to mispredict on the data. (A leaf goes to itself either way.)
  auto left = static_cast<uint32_t>(v <= n.threshold);
  if constexpr (kNan) left |= (n.feature >> 31) & static_cast<uint32_t>(std::isnan(v));
  return n.child[left ^ 1u];
}

// Adds every tree's leaf to `sums` (count x num_outputs, already holding the base margins) for `count` rows.
// `lanes` has room for the rows in whole groups of kLanes, interleaved: a group's feature f of lane l at
// f * kLanes + l, so a lane reads its value at the node's (scaled) feature plus a constant.
template <bool kSpecials, bool kNan, typename Sum>
void Evaluator::Block(const float* rows, size_t count, float* lanes, Sum* sums) const {
  const size_t width = forest_.num_features;
  const size_t k = forest_.num_outputs;
  const size_t groups = count / kLanes;
  for (size_t g = 0; g < groups; ++g)
    for (size_t l = 0; l < kLanes; ++l)
      for (size_t f = 0; f < width; ++f) lanes[(g * width + f) * kLanes + l] = rows[(g * kLanes + l) * width + f];
  for (const PackedTree& t : trees_) {
    // kLanes rows walk the tree together, depth steps each; one that reaches its leaf early stays there.
    for (size_t g = 0; g < groups; ++g) {
      const float* x = lanes + g * width * kLanes;
      uint32_t at[kLanes];
      std::fill(at, at + kLanes, t.root);
      for (uint32_t step = 0; step < t.depth; ++step) {
#pragma GCC unroll 16
        for (size_t l = 0; l < kLanes; ++l) at[l] = Next<kSpecials, kNan, 1>(at[l], x + l);
      }
      for (size_t l = 0; l < kLanes; ++l) sums[(g * kLanes + l) * k + t.output] += static_cast<Sum>(Value(at[l]));
    }
  }
  // The rows left over (a batch of one, say) walk kLanes trees at once instead, as many steps as the deepest
  // of them; their leaves are then added in tree order. (A row's own values are read at feature * kLanes.)
  for (size_t r = groups * kLanes; r < count; ++r) {
    const float* row = rows + r * width;
    Sum* sum = sums + r * k;
    size_t first = 0;
    for (; first + kLanes <= trees_.size(); first += kLanes) {
      uint32_t at[kLanes];
      uint32_t depth = 0;
      for (size_t l = 0; l < kLanes; ++l) {
        at[l] = trees_[first + l].root;
        depth = std::max(depth, trees_[first + l].depth);
      }
      for (uint32_t step = 0; step < depth; ++step) {
#pragma GCC unroll 16
        for (uint32_t& a : at) a = Next<kSpecials, kNan, kLanes>(a, row);
      }
      for (size_t l = 0; l < kLanes; ++l) sum[trees_[first + l].output] += static_cast<Sum>(Value(at[l]));
    }
    for (; first < trees_.size(); ++first) {
      uint32_t at = trees_[first].root;
      for (uint32_t step = 0; step < trees_[first].depth; ++step) at = Next<kSpecials, kNan, kLanes>(at, row);
      sum[trees_[first].output] += static_cast<Sum>(Value(at));
    }
  }
}

template <typename Sum>
void Evaluator::AddTrees(const float* rows, size_t count, float* lanes, Sum* sums) const {
  const size_t values = count * forest_.num_features;
  const bool nan = std::any_of(rows, rows + values, [](float v) { return std::isnan(v); });
  if (!specials_.empty()) {
    Block<true, true>(rows, count, lanes, sums);
  } else if (nan) {
    Block<false, true>(rows, count, lanes, sums);
  } else {
    Block<false, false>(rows, count, lanes, sums);
  }
}

void Evaluator::Margins(std::span<const float> features, size_t rows, std::span<double> margins) const {
  if (!packed_) return forest_.Margins(features, rows, margins);
  const size_t k = forest_.num_outputs;
  const size_t width = forest_.num_features;
  const size_t block_rows = std::min(kBlockRows, rows);
  std::vector<float> lanes(block_rows / kLanes * kLanes * width);
  // LightGBM sums in double (straight into the margins); XGBoost in float32, from its base margin.
  std::vector<float> sums(forest_.library == Library::kXgboost ? block_rows * k : 0);
  for (size_t begin = 0; begin < rows; begin += kBlockRows) {
    const size_t count = std::min(kBlockRows, rows - begin);
    const float* block = features.data() + begin * width;
    double* out = margins.data() + begin * k;
    if (forest_.library == Library::kLightGbm) {
      for (size_t r = 0; r < count; ++r) std::copy(forest_.base_margin.begin(), forest_.base_margin.end(), out + r * k);
      AddTrees(block, count, lanes.data(), out);
    } else {
      for (size_t r = 0; r < count; ++r)
        for (size_t i = 0; i < k; ++i) sums[r * k + i] = static_cast<float>(forest_.base_margin[i]);
      AddTrees(block, count, lanes.data(), sums.data());
      std::copy(sums.begin(), sums.begin() + static_cast<std::ptrdiff_t>(count * k), out);
    }
  }
}

}  // namespace serving::trees
