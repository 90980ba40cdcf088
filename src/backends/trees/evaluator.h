// The fast evaluation of a checked Forest: the same margins as Forest::Margins (which stays the readable
// reference and the test oracle), bit for bit, from a layout chosen by measurement (docs/benchmarks.md#trees).
//
// - Every numerical split becomes one float32 test `x <= t`: LightGBM's `(double)x <= threshold` holds exactly
//   when x is at most the largest float not above the threshold, XGBoost's `x < threshold` when x is at most
//   the float just below it; where NaN goes is one flag per node. Splits that need more (LightGBM categorical
//   bitsets, missing_type Zero) are marked and decided by the reference rule.
// - Nodes are 16 bytes, internal nodes only, each tree's in depth-first order; a child index below zero
//   names a leaf value. Leaves live in their own array.
// - Rows are evaluated a block at a time, tree by tree, so a tree stays in cache while the block's rows walk
//   it; several rows walk the same tree at once to overlap their memory reads. Each row still adds its trees
//   in file order, so sums round exactly as the library's do.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backends/trees/forest.h"

namespace serving::trees {

class Evaluator {
 public:
  // `forest` must have passed Check() and must outlive the evaluator (categorical splits read its nodes).
  explicit Evaluator(const Forest& forest);

  // As Forest::Margins: rows x num_outputs raw scores of row-major features.
  void Margins(std::span<const float> features, size_t rows, std::span<double> margins) const;

 private:
  struct PackedNode {
    float threshold;   // go left when x <= threshold; for a special node, its index into specials_
    uint32_t feature;  // the feature, with kNanLeft / kSpecial in its top bits
    int32_t left;      // >= 0: a node of nodes_; < 0: ~index into leaves_
    int32_t right;
  };
  struct PackedTree {
    int32_t root;  // as a child index: a tree that is a single leaf has root < 0
    uint32_t output;
  };
  static constexpr uint32_t kNanLeft = 1u << 31;
  static constexpr uint32_t kSpecial = 1u << 30;
  static constexpr uint32_t kFeatureMask = Forest::kMaxFeatures;

  int32_t Pack(const Tree& tree);
  template <bool kSpecials>
  int32_t Next(const PackedNode& n, float x) const;
  template <bool kSpecials, typename Sum>
  void Block(const float* rows, size_t count, Sum* sums) const;
  template <typename Sum>
  void AddTrees(const float* rows, size_t count, Sum* sums) const;

  const Forest& forest_;
  std::vector<PackedNode> nodes_;
  std::vector<double> leaves_;
  std::vector<const Node*> specials_;  // the reference nodes of special splits: their rule decides
  std::vector<PackedTree> trees_;
};

}  // namespace serving::trees
