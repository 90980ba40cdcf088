// The fast evaluation of a checked Forest: the same margins as Forest::Margins (which stays the readable
// reference and the test oracle), bit for bit, from a layout chosen by measurement (docs/benchmarks.md#trees).
//
// - Every numerical split becomes one float32 test `x <= t`: LightGBM's `(double)x <= threshold` holds exactly
//   when x is at most the largest float not above the threshold, XGBoost's `x < threshold` when x is at most
//   the float just below it; where NaN goes is one flag per node. Splits that need more (categorical
//   bitsets, LightGBM's missing_type Zero) are marked and decided by the reference rule.
// - Nodes are 16 bytes, each tree's in depth-first order, and refer to their children by byte offset (no
//   multiply per step). A leaf is a node whose children are itself, so a walk can take a fixed number of
//   steps, the tree's depth, without asking whether it has arrived; its value is in a parallel array.
// - Rows are evaluated a block at a time, tree by tree, so a tree stays in cache while the block's rows walk
//   it; 16 rows walk the same tree in lock-step, without a branch on the data, to overlap their memory reads
//   (rows left over walk 16 trees at once instead). The 16 rows are first interleaved feature by feature, so
//   each lane finds its value at the node's feature (stored times 16) plus its lane number, with no per-row
//   base to keep in a register. Blocks without NaN skip the NaN rule. Each row still adds its trees in file
//   order, so sums round exactly as the library's do.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backends/trees/forest.h"

namespace serving::trees {

class Evaluator {
 public:
  // The most nodes the packed layout addresses (16 bytes each, by 32-bit byte offsets): a forest with more is
  // evaluated by the reference (Forest::Margins).
  static constexpr size_t kMaxNodes = (size_t{1} << 28) - 1;

  // `forest` must have passed Check() and must outlive the evaluator (categorical splits read its nodes).
  // `max_nodes` lowers kMaxNodes (for tests).
  explicit Evaluator(const Forest& forest, size_t max_nodes = kMaxNodes);

  // As Forest::Margins: rows x num_outputs raw scores of row-major features.
  void Margins(std::span<const float> features, size_t rows, std::span<double> margins) const;

  // Whether the forest was packed (false: Margins is the reference evaluation).
  bool packed() const { return packed_; }

  // What the load log reports of the layout.
  struct Layout {
    bool packed;
    size_t nodes;           // the forest's nodes
    uint32_t max_depth;     // of its deepest tree (packed only): the longest walk
    size_t special_splits;  // decided by the reference rule (categorical, LightGBM missing_type Zero)
  };
  Layout layout() const;

 private:
  struct PackedNode {
    float threshold;    // go left when x <= threshold; for a special node, its index into specials_
    uint32_t feature;   // the feature times kLanes, with kNanLeft / kSpecial in its top bits (a leaf: 0)
    uint32_t child[2];  // left, right: byte offsets into nodes_ (a leaf: its own); indexed by the test
  };
  struct PackedTree {
    uint32_t root;  // a byte offset into nodes_
    uint32_t output;
    uint32_t depth;  // steps from the root to its deepest leaf (0: the tree is a single leaf)
  };
  static constexpr uint32_t kNanLeft = 1u << 31;
  static constexpr uint32_t kSpecial = 1u << 30;
  static constexpr uint32_t kFeatureMask = kSpecial - 1;

  static uint32_t Offset(size_t node) { return static_cast<uint32_t>(node * sizeof(PackedNode)); }
  const PackedNode& At(uint32_t offset) const {
    return *reinterpret_cast<const PackedNode*>(reinterpret_cast<const char*>(nodes_.data()) + offset);
  }
  double Value(uint32_t offset) const { return values_[offset / sizeof(PackedNode)]; }

  PackedTree Pack(const Tree& tree);
  template <bool kSpecials, bool kNan, size_t kStride>
  uint32_t Next(uint32_t at, const float* x) const;
  template <bool kSpecials, bool kNan, typename Sum>
  void Block(const float* rows, size_t count, float* lanes, Sum* sums) const;
  template <typename Sum>
  void AddTrees(const float* rows, size_t count, float* lanes, Sum* sums) const;

  const Forest& forest_;
  std::vector<PackedNode> nodes_;
  std::vector<double> values_;         // per node: a leaf's value (0 for splits)
  std::vector<const Node*> specials_;  // the reference nodes of special splits: their rule decides
  std::vector<PackedTree> trees_;
  bool packed_ = false;
};

}  // namespace serving::trees
