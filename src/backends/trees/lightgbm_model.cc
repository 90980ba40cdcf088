#include "backends/trees/lightgbm_model.h"

#include <charconv>
#include <cmath>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace serving::trees {
namespace {

// LightGBM's decision_type bits (its tree.h): categorical, default left, and the missing type above them.
constexpr int kCategoricalMask = 1;
constexpr int kDefaultLeftMask = 2;

// Key=value lines of one section (the header or one tree); a bare word is a key with an empty value.
using Section = std::map<std::string, std::string, std::less<>>;

std::string Cut(std::string_view s) { return std::string(s.substr(0, 64)) + (s.size() > 64 ? "..." : ""); }

std::vector<std::string_view> Words(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

template <typename T>
std::optional<T> Number(std::string_view word) {
  T value{};
  const char* end = word.data() + word.size();
  auto [ptr, ec] = std::from_chars(word.data(), end, value);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

// A whitespace-separated list of numbers under `key` in `section`: exactly `count` of them when count is set.
template <typename T>
StatusOr<std::vector<T>> List(const Section& section, std::string_view key, const std::string& where,
                              std::optional<size_t> count) {
  auto it = section.find(key);
  if (it == section.end()) return InvalidArgument(where + " has no " + std::string(key));
  std::vector<T> out;
  for (std::string_view w : Words(it->second)) {
    auto v = Number<T>(w);
    if (!v) return InvalidArgument(where + ": " + std::string(key) + " holds '" + Cut(w) + "', not a number");
    out.push_back(*v);
  }
  if (count && out.size() != *count)
    return InvalidArgument(where + ": " + std::string(key) + " has " + std::to_string(out.size()) + " values, not " +
                           std::to_string(*count));
  return out;
}

StatusOr<int64_t> Integer(const Section& section, std::string_view key, const std::string& where) {
  auto it = section.find(key);
  if (it == section.end()) return InvalidArgument(where + " has no " + std::string(key));
  auto v = Number<int64_t>(it->second);
  if (!v) return InvalidArgument(where + ": " + std::string(key) + " is '" + Cut(it->second) + "', not an integer");
  return *v;
}

// The objective line, e.g. "binary sigmoid:1", "multiclassova num_class:3 sigmoid:1", "regression sqrt".
Status ReadObjective(std::string_view line, Forest& f) {
  const auto words = Words(line);
  if (words.empty()) return InvalidArgument("the model's objective is empty");
  const std::string name(words[0]);
  f.objective = std::string(line);
  bool sqrt = false;
  for (size_t i = 1; i < words.size(); ++i) {
    if (words[i] == "sqrt") sqrt = true;
    if (words[i].starts_with("sigmoid:")) {
      auto s = Number<double>(words[i].substr(8));
      if (!s || !std::isfinite(*s)) return InvalidArgument("the objective's " + Cut(words[i]) + " is not a number");
      f.sigmoid_scale = *s;
    }
  }
  if (name == "binary" || name == "multiclassova" || name == "cross_entropy" || name == "xentropy") {
    f.link = Link::kSigmoid;
    if (name == "cross_entropy" || name == "xentropy") f.sigmoid_scale = 1;
    f.classifier = name != "cross_entropy" && name != "xentropy";
  } else if (name == "multiclass" || name == "softmax") {
    f.link = Link::kSoftmax;
    f.classifier = true;
  } else if (name == "poisson" || name == "gamma" || name == "tweedie") {
    f.link = Link::kExp;
  } else if (name == "cross_entropy_lambda" || name == "xentlambda") {
    f.link = Link::kLog1pExp;
  } else if (name == "regression" || name == "regression_l2" || name == "regression_l1" || name == "huber" ||
             name == "fair" || name == "quantile" || name == "mape") {
    f.link = sqrt ? Link::kSquare : Link::kIdentity;
  } else if (name == "lambdarank" || name == "rank_xendcg") {
    f.link = Link::kIdentity;
  } else {
    return InvalidArgument("objective '" + Cut(name) + "' is not supported");
  }
  return Status::Ok();
}

// A tree's categorical bitsets, appended to the forest's: the offsets of each split's words (cat_boundaries,
// relative to `base`, the forest's bitset count before them).
struct Bitsets {
  std::vector<uint32_t> boundaries;
  uint32_t base = 0;
  int64_t count = 0;  // num_cat
};

StatusOr<Bitsets> ReadBitsets(const Section& s, const std::string& where, Forest& f) {
  Bitsets out;
  out.base = static_cast<uint32_t>(f.bitsets.size());
  SERVING_ASSIGN_OR_RETURN(out.count, Integer(s, "num_cat", where));
  if (out.count <= 0) return out;
  SERVING_ASSIGN_OR_RETURN(auto b, List<uint32_t>(s, "cat_boundaries", where, std::nullopt));
  SERVING_ASSIGN_OR_RETURN(auto words, List<uint32_t>(s, "cat_threshold", where, std::nullopt));
  if (b.size() != static_cast<size_t>(out.count) + 1)
    return InvalidArgument(where + ": cat_boundaries has " + std::to_string(b.size()) + " values for num_cat " +
                           std::to_string(out.count));
  for (size_t i = 0; i < b.size(); ++i)
    if (b[i] > words.size() || (i > 0 && b[i] < b[i - 1]))
      return InvalidArgument(where + ": cat_boundaries is not an ascending list of offsets into cat_threshold");
  out.boundaries = std::move(b);
  f.bitsets.insert(f.bitsets.end(), words.begin(), words.end());
  return out;
}

// One internal node's split: its decision type's default direction, missing-value type and kind, and its
// threshold or, for a categorical split, the bitset the threshold names.
Status ReadSplit(Node& n, size_t i, int32_t d, double threshold, const Bitsets& bitsets, const std::string& where) {
  if (d < 0 || d > 15) return InvalidArgument(where + ": decision_type " + std::to_string(d) + " is not LightGBM's");
  n.default_left = (d & kDefaultLeftMask) != 0;
  const int missing = (d >> 2) & 3;
  if (missing == 3) return InvalidArgument(where + ": decision_type " + std::to_string(d) + " has no missing type");
  n.missing = static_cast<Missing>(missing);
  if (!(d & kCategoricalMask)) {
    n.threshold = threshold;
    return Status::Ok();
  }
  const auto& b = bitsets.boundaries;
  if (!(threshold >= 0 && threshold < static_cast<double>(b.size() > 0 ? b.size() - 1 : 0)))
    return InvalidArgument(where + ": categorical split " + std::to_string(i) + " names bitset " +
                           std::to_string(threshold) + " of " + std::to_string(bitsets.count));
  const auto k = static_cast<size_t>(threshold);
  n.categorical = true;
  n.bitset_begin = bitsets.base + b[k];
  n.bitset_words = b[k + 1] - b[k];
  return Status::Ok();
}

// One tree: internal nodes first (LightGBM's own indices), then its leaves (leaf i at num_leaves - 1 + i).
StatusOr<Tree> ReadTree(const Section& s, const std::string& where, Forest& f) {
  if (auto it = s.find("is_linear"); it != s.end() && it->second != "0")
    return InvalidArgument(where + " is a linear tree (linear_tree=true): linear trees are not supported");
  SERVING_ASSIGN_OR_RETURN(auto leaves, Integer(s, "num_leaves", where));
  if (leaves < 1) return InvalidArgument(where + ": num_leaves is " + std::to_string(leaves));
  const auto num_leaves = static_cast<size_t>(leaves);
  SERVING_ASSIGN_OR_RETURN(auto leaf_value, List<double>(s, "leaf_value", where, num_leaves));
  Tree tree;
  if (num_leaves == 1) {
    tree.nodes.push_back(Node{.value = leaf_value[0]});
    return tree;
  }
  const size_t inner = num_leaves - 1;
  SERVING_ASSIGN_OR_RETURN(auto feature, List<int32_t>(s, "split_feature", where, inner));
  SERVING_ASSIGN_OR_RETURN(auto threshold, List<double>(s, "threshold", where, inner));
  SERVING_ASSIGN_OR_RETURN(auto decision, List<int32_t>(s, "decision_type", where, inner));
  SERVING_ASSIGN_OR_RETURN(auto left, List<int32_t>(s, "left_child", where, inner));
  SERVING_ASSIGN_OR_RETURN(auto right, List<int32_t>(s, "right_child", where, inner));
  SERVING_ASSIGN_OR_RETURN(const Bitsets bitsets, ReadBitsets(s, where, f));
  // LightGBM's children: >= 0 an internal node, < 0 the leaf ~child.
  const auto child = [&](int32_t c) -> int32_t {
    if (c >= 0) return static_cast<size_t>(c) < inner ? c : -1;
    const int64_t leaf = -static_cast<int64_t>(c) - 1;
    return leaf < static_cast<int64_t>(num_leaves) ? static_cast<int32_t>(inner + static_cast<size_t>(leaf)) : -1;
  };
  tree.nodes.resize(inner + num_leaves);
  for (size_t i = 0; i < inner; ++i) {
    Node& n = tree.nodes[i];
    n.feature = feature[i];
    if (n.feature < 0) return InvalidArgument(where + ": split_feature " + std::to_string(n.feature) + " is negative");
    n.left = child(left[i]);
    n.right = child(right[i]);
    SERVING_RETURN_IF_ERROR(ReadSplit(n, i, decision[i], threshold[i], bitsets, where));
  }
  for (size_t i = 0; i < num_leaves; ++i) tree.nodes[inner + i].value = leaf_value[i];
  return tree;
}

// The file split into its header and tree sections, ending at "end of trees".
struct Sections {
  Section header;
  std::vector<std::pair<std::string, Section>> trees;
};

StatusOr<Sections> Split(std::string_view text) {
  Sections out;
  Section* current = &out.header;
  bool ended = false;
  size_t line_number = 0;
  while (!text.empty() && !ended) {
    const size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (line == "end of trees") {
      ended = true;
      break;
    }
    const size_t eq = line.find('=');
    std::string key(line.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : std::string(line.substr(eq + 1));
    if (key == "Tree") {
      out.trees.emplace_back("tree " + value, Section{});
      current = &out.trees.back().second;
      continue;
    }
    if (key.empty()) return InvalidArgument("line " + std::to_string(line_number) + " has no key");
    (*current)[std::move(key)] = std::move(value);
  }
  if (!ended) return InvalidArgument("the file ends before 'end of trees' (truncated?)");
  return out;
}

}  // namespace

StatusOr<Forest> ParseLightGbm(std::string_view text) {
  if (!text.starts_with("tree\n") && !text.starts_with("tree\r\n"))
    return InvalidArgument("not a LightGBM text model (it does not begin with the line 'tree')");
  SERVING_ASSIGN_OR_RETURN(auto sections, Split(text));
  const Section& h = sections.header;
  if (!h.contains("version") && !h.contains("num_class"))
    return InvalidArgument("not a LightGBM text model (no version or num_class in its header)");
  Forest f;
  f.library = Library::kLightGbm;
  SERVING_ASSIGN_OR_RETURN(auto num_class, Integer(h, "num_class", "the header"));
  SERVING_ASSIGN_OR_RETURN(auto per_iteration, Integer(h, "num_tree_per_iteration", "the header"));
  SERVING_ASSIGN_OR_RETURN(auto max_feature, Integer(h, "max_feature_idx", "the header"));
  if (per_iteration < 1 || per_iteration > 1 << 20)
    return InvalidArgument("num_tree_per_iteration is " + std::to_string(per_iteration));
  if (num_class < 1 || (num_class > 1 && num_class != per_iteration))
    return InvalidArgument("num_class " + std::to_string(num_class) + " disagrees with num_tree_per_iteration " +
                           std::to_string(per_iteration));
  if (max_feature < 0 || max_feature >= 1 << 24)
    return InvalidArgument("max_feature_idx is " + std::to_string(max_feature));
  f.num_outputs = static_cast<uint32_t>(per_iteration);
  f.num_features = static_cast<uint32_t>(max_feature + 1);
  f.base_margin.assign(f.num_outputs, 0.0);
  f.average = h.contains("average_output");
  auto objective = h.find("objective");
  if (objective == h.end()) return InvalidArgument("the header has no objective");
  if (Status s = ReadObjective(objective->second, f); !s.ok()) return s;
  if (auto names = h.find("feature_names"); names != h.end()) {
    for (std::string_view w : Words(names->second)) f.feature_names.emplace_back(w);
  } else {
    for (uint32_t i = 0; i < f.num_features; ++i) f.feature_names.push_back("Column_" + std::to_string(i));
  }
  if (sections.trees.size() % f.num_outputs != 0)
    return InvalidArgument("the model has " + std::to_string(sections.trees.size()) + " trees, not a multiple of " +
                           std::to_string(f.num_outputs) + " trees per iteration");
  for (size_t i = 0; i < sections.trees.size(); ++i) {
    const auto& [where, section] = sections.trees[i];
    if (where != "tree " + std::to_string(i))
      return InvalidArgument("tree " + std::to_string(i) + " is labelled '" + Cut(where) + "'");
    SERVING_ASSIGN_OR_RETURN(auto tree, ReadTree(section, where, f));
    tree.output = static_cast<uint32_t>(i % f.num_outputs);
    f.trees.push_back(std::move(tree));
  }
  if (Status s = f.Check(); !s.ok()) return s;
  return f;
}

}  // namespace serving::trees
