#include "backends/trees/xgboost_model.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

namespace serving::trees {
namespace {

using nlohmann::json;

// XGBoost's model files nest about 6 deep; a file nesting far deeper is not one.
constexpr int kMaxDepth = 32;

std::string Cut(const std::string& s) { return s.substr(0, 64) + (s.size() > 64 ? "..." : ""); }

// A value for an error message. UBJSON strings need not be UTF-8, and dump() throws on those unless told to
// replace what is not (found by make fuzz).
std::string Show(const json& value) { return Cut(value.dump(-1, ' ', false, json::error_handler_t::replace)); }

const json* Member(const json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

// XGBoost writes its parameters as strings ("30", "5E-1", in 3.x also "[5E-1]"); numbers are taken too.
StatusOr<std::vector<double>> Numbers(const json* value, const std::string& what) {
  if (!value) return InvalidArgument("the model has no " + what);
  if (value->is_number()) return std::vector<double>{value->get<double>()};
  if (!value->is_string()) return InvalidArgument(what + " is not a number");
  std::string text = value->get<std::string>();
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  std::vector<double> out;
  size_t i = 0;
  while (i <= text.size()) {
    size_t j = text.find(',', i);
    if (j == std::string::npos) j = text.size();
    std::string word = text.substr(i, j - i);
    while (!word.empty() && word.front() == ' ') word.erase(0, 1);
    while (!word.empty() && word.back() == ' ') word.pop_back();
    double v = 0;
    auto [ptr, ec] = std::from_chars(word.data(), word.data() + word.size(), v);
    if (word.empty() || ec != std::errc() || ptr != word.data() + word.size())
      return InvalidArgument(what + " '" + Cut(value->get<std::string>()) + "' is not a number");
    out.push_back(v);
    i = j + 1;
  }
  return out;
}

StatusOr<int64_t> Count(const json* value, const std::string& what, int64_t limit) {
  SERVING_ASSIGN_OR_RETURN(auto n, Numbers(value, what));
  const double v = n.front();
  if (n.size() != 1 || !(v >= 0 && v <= static_cast<double>(limit)) || v != std::floor(v))
    return InvalidArgument(what + " is not a count up to " + std::to_string(limit));
  return static_cast<int64_t>(v);
}

// The objective's link and how its base score becomes a margin (XGBoost's ProbToMargin, in float32).
struct Objective {
  Link link;
  enum class Base { kAsIs, kLogit, kLog } base;
  bool classifier;
};

StatusOr<Objective> ReadObjective(const std::string& name) {
  using B = Objective::Base;
  if (name == "binary:logistic" || name == "reg:logistic") return Objective{Link::kSigmoid, B::kLogit, true};
  // Its base score is already a margin (XGBoost 1.4 on, dmlc/xgboost#6517).
  if (name == "binary:logitraw") return Objective{Link::kIdentity, B::kAsIs, true};
  if (name == "binary:hinge") return Objective{Link::kHinge, B::kAsIs, true};
  if (name == "multi:softprob") return Objective{Link::kSoftmax, B::kAsIs, true};
  if (name == "multi:softmax") return Objective{Link::kArgmax, B::kAsIs, true};
  if (name == "count:poisson" || name == "reg:gamma" || name == "reg:tweedie")
    return Objective{Link::kExp, B::kLog, false};
  if (name == "reg:squarederror" || name == "reg:squaredlogerror" || name == "reg:pseudohubererror" ||
      name == "reg:absoluteerror" || name == "reg:quantileerror" || name == "rank:pairwise" || name == "rank:ndcg" ||
      name == "rank:map")
    return Objective{Link::kIdentity, B::kAsIs, false};
  return InvalidArgument("objective '" + Cut(name) + "' is not supported");
}

float BaseMargin(float base_score, Objective::Base kind) {
  switch (kind) {
    case Objective::Base::kLogit: return -std::log(1.0f / base_score - 1.0f);
    case Objective::Base::kLog: return std::log(base_score);
    case Objective::Base::kAsIs: break;
  }
  return base_score;
}

constexpr size_t kAnyCount = static_cast<size_t>(-1);

// The array `key` of numbers (or booleans) in `tree`, of `count` values (kAnyCount: of any length).
template <typename T>
StatusOr<std::vector<T>> Array(const json& tree, const char* key, size_t count, const std::string& where) {
  const json* a = Member(tree, key);
  if (!a || !a->is_array()) return InvalidArgument(where + " has no " + key + " array");
  if (count != kAnyCount && a->size() != count)
    return InvalidArgument(where + ": " + key + " has " + std::to_string(a->size()) + " values for " +
                           std::to_string(count) + " nodes");
  std::vector<T> out;
  out.reserve(a->size());
  for (const json& v : *a) {
    if (v.is_boolean()) {
      out.push_back(static_cast<T>(v.get<bool>()));
    } else if (std::is_integral_v<T> && v.is_number_float()) {
      // An index written as a float: converted only when it is a whole number in range (casting 1e300 to an
      // integer is undefined; found by feeding the fuzz target such a file).
      const double d = v.get<double>();
      if (!(d >= -9.0e18 && d <= 9.0e18) || d != std::floor(d))
        return InvalidArgument(where + ": " + key + " holds " + v.dump() + ", not an index");
      out.push_back(static_cast<T>(d));
    } else if (v.is_number()) {
      out.push_back(v.get<T>());
    } else {
      return InvalidArgument(where + ": " + key + " holds a value that is not a number");
    }
  }
  return out;
}

// XGBoost's categorical splits (split_type 1): each lists the categories that go right, as a segment of the
// tree's `categories` (categories_nodes / _segments / _sizes say whose segment is where). They become one
// bitset per split in `bitsets`, read by Forest::GoesLeft.
Status ReadCategories(const json& t, const std::string& where, const std::vector<int64_t>& type,
                      std::vector<Node>& nodes, std::vector<uint32_t>& bitsets) {
  SERVING_ASSIGN_OR_RETURN(auto categories, Array<int64_t>(t, "categories", kAnyCount, where));
  SERVING_ASSIGN_OR_RETURN(auto owners, Array<int64_t>(t, "categories_nodes", kAnyCount, where));
  SERVING_ASSIGN_OR_RETURN(auto segments, Array<int64_t>(t, "categories_segments", owners.size(), where));
  SERVING_ASSIGN_OR_RETURN(auto sizes, Array<int64_t>(t, "categories_sizes", owners.size(), where));
  for (size_t j = 0; j < owners.size(); ++j) {
    const int64_t id = owners[j];
    if (id < 0 || static_cast<uint64_t>(id) >= nodes.size() || type[static_cast<size_t>(id)] != 1 ||
        nodes[static_cast<size_t>(id)].feature < 0)
      return InvalidArgument(where + ": categories_nodes names node " + std::to_string(id) +
                             ", which is not a categorical split");
    Node& node = nodes[static_cast<size_t>(id)];
    if (node.categorical) return InvalidArgument(where + ": node " + std::to_string(id) + " has two category lists");
    const int64_t begin = segments[j], size = sizes[j];
    if (begin < 0 || size < 0 || static_cast<uint64_t>(begin) > categories.size() ||
        static_cast<uint64_t>(size) > categories.size() - static_cast<uint64_t>(begin))
      return InvalidArgument(where + ": node " + std::to_string(id) + "'s categories (from " + std::to_string(begin) +
                             ", " + std::to_string(size) + " of them) are outside the tree's " +
                             std::to_string(categories.size()));
    int64_t largest = -1;
    for (int64_t k = begin; k < begin + size; ++k) {
      const int64_t c = categories[static_cast<size_t>(k)];
      if (c < 0 || c >= Forest::kXgboostCategories)
        return InvalidArgument(where + ": node " + std::to_string(id) + " lists category " + std::to_string(c) +
                               " (categories are 0 to " + std::to_string(Forest::kXgboostCategories - 1) + ")");
      largest = std::max(largest, c);
    }
    const auto words = static_cast<size_t>(largest / 32 + 1);
    if (words > Forest::kMaxBitsetWords - bitsets.size())
      return InvalidArgument(where + ": the model's categorical splits need more than " +
                             std::to_string(Forest::kMaxBitsetWords / (1 << 18)) + " MiB of category bitsets");
    node.categorical = true;
    node.bitset_begin = static_cast<uint32_t>(bitsets.size());
    node.bitset_words = static_cast<uint32_t>(words);
    bitsets.resize(bitsets.size() + node.bitset_words);
    for (int64_t k = begin; k < begin + size; ++k) {
      const auto c = static_cast<uint64_t>(categories[static_cast<size_t>(k)]);
      bitsets[node.bitset_begin + c / 32] |= 1u << (c % 32);
    }
  }
  for (size_t i = 0; i < nodes.size(); ++i)
    if (type[i] == 1 && nodes[i].feature >= 0 && !nodes[i].categorical)
      return InvalidArgument(where + ": node " + std::to_string(i) + " is a categorical split without categories");
  return Status::Ok();
}

StatusOr<Tree> ReadTree(const json& t, const std::string& where, std::vector<uint32_t>& bitsets) {
  const json* param = Member(t, "tree_param");
  SERVING_ASSIGN_OR_RETURN(auto nodes,
                           Count(param ? Member(*param, "num_nodes") : nullptr, where + " num_nodes", 1 << 30));
  if (const json* leaf_vector = param ? Member(*param, "size_leaf_vector") : nullptr) {
    SERVING_ASSIGN_OR_RETURN(auto size, Count(leaf_vector, where + " size_leaf_vector", 1 << 20));
    if (size > 1) return InvalidArgument(where + " has vector leaves (multi_output_tree): not supported");
  }
  const auto n = static_cast<size_t>(nodes);
  SERVING_ASSIGN_OR_RETURN(auto left, Array<int64_t>(t, "left_children", n, where));
  SERVING_ASSIGN_OR_RETURN(auto right, Array<int64_t>(t, "right_children", n, where));
  SERVING_ASSIGN_OR_RETURN(auto index, Array<int64_t>(t, "split_indices", n, where));
  SERVING_ASSIGN_OR_RETURN(auto condition, Array<double>(t, "split_conditions", n, where));
  SERVING_ASSIGN_OR_RETURN(auto default_left, Array<int64_t>(t, "default_left", n, where));
  std::vector<int64_t> type(n, 0);  // 0: numerical, 1: categorical
  if (Member(t, "split_type")) {
    SERVING_ASSIGN_OR_RETURN(auto types, Array<int64_t>(t, "split_type", n, where));
    type = std::move(types);
    for (size_t i = 0; i < n; ++i)
      if (type[i] != 0 && type[i] != 1)
        return InvalidArgument(where + " node " + std::to_string(i) + " has split_type " + std::to_string(type[i]) +
                               " (0 numerical and 1 categorical are known)");
  }
  Tree tree;
  tree.nodes.resize(n);
  for (size_t i = 0; i < n; ++i) {
    Node& node = tree.nodes[i];
    // XGBoost keeps its thresholds and leaf values as float32: the JSON text round-trips to the same float.
    const double value = static_cast<float>(condition[i]);
    if (left[i] == -1) {
      node.value = value;
      continue;
    }
    const auto in_range = [&](int64_t c) {
      return c >= 0 && c < static_cast<int64_t>(n) ? static_cast<int32_t>(c) : -1;
    };
    if (index[i] < 0 || index[i] > INT32_MAX)
      return InvalidArgument(where + " node " + std::to_string(i) + " splits on feature " + std::to_string(index[i]));
    node.feature = static_cast<int32_t>(index[i]);
    node.left = in_range(left[i]);
    node.right = in_range(right[i]);
    node.threshold = value;
    node.missing = Missing::kNaN;
    node.default_left = default_left[i] != 0;
  }
  if (std::find(type.begin(), type.end(), 1) != type.end()) {
    Status categories = ReadCategories(t, where, type, tree.nodes, bitsets);
    if (!categories.ok()) return categories;
  }
  return tree;
}

// nlohmann's DOM builder behind a bound: its binary readers recurse once per nesting level and a typed UBJSON
// array of nulls takes no input bytes per element, so a tiny file could nest or grow without limit. This stops
// at kMaxDepth levels and at more values than the input has bytes.
class BoundedDom {
 public:
  BoundedDom(json& root, size_t bytes) : dom_(root, /*allow_exceptions=*/false), budget_(bytes + 16) {}
  std::string error;

  bool null() { return Value() && dom_.null(); }
  bool boolean(bool v) { return Value() && dom_.boolean(v); }
  bool number_integer(json::number_integer_t v) { return Value() && dom_.number_integer(v); }
  bool number_unsigned(json::number_unsigned_t v) { return Value() && dom_.number_unsigned(v); }
  bool number_float(json::number_float_t v, const std::string& s) { return Value() && dom_.number_float(v, s); }
  bool string(std::string& v) { return Value() && dom_.string(v); }
  bool binary(json::binary_t& v) { return Value() && dom_.binary(v); }
  bool key(std::string& v) { return Value() && dom_.key(v); }
  bool start_object(std::size_t n) { return Enter(n) && dom_.start_object(n); }
  bool end_object() { return Leave() && dom_.end_object(); }
  bool start_array(std::size_t n) { return Enter(n) && dom_.start_array(n); }
  bool end_array() { return Leave() && dom_.end_array(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
    error = e.what();
    return false;
  }

 private:
  bool Value() {
    if (budget_ == 0) error = "the file holds more values than bytes";
    return budget_-- > 0;
  }
  // `n`: the count a UBJSON container declares (unknown: size_t(-1)).
  bool Enter(std::size_t n) {
    if (++depth_ > kMaxDepth) error = "the model nests deeper than " + std::to_string(kMaxDepth) + " levels";
    if (n != static_cast<std::size_t>(-1) && n > budget_) error = "the file holds more values than bytes";
    return error.empty() && Value();
  }
  bool Leave() {
    --depth_;
    return true;
  }

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  size_t budget_;
  int depth_ = 0;
};

StatusOr<json> Document(std::string_view text, json::input_format_t format) {
  json doc;
  BoundedDom dom(doc, text.size());
  bool ok = false;
  try {
    ok = json::sax_parse(text.begin(), text.end(), &dom, format, /*strict=*/true);
  } catch (const json::exception& e) {  // the DOM builder throws for sizes past its limits whatever it was told
    dom.error = e.what();
  }
  if (!ok || !dom.error.empty())
    return InvalidArgument(std::string(format == json::input_format_t::json ? "not valid JSON" : "not valid UBJSON") +
                           (dom.error.empty() ? "" : ": " + Cut(dom.error)));
  return doc;
}

// The gbtree booster's model (a dart booster wraps one), with its trees and each tree's output.
struct Booster {
  const json* model;
  const json* trees;
  const json* tree_info;
};

StatusOr<Booster> FindBooster(const json& learner) {
  const json* booster = Member(learner, "gradient_booster");
  const json* booster_name = booster ? Member(*booster, "name") : nullptr;
  if (!booster_name || !booster_name->is_string()) return InvalidArgument("the model has no gradient_booster");
  if (*booster_name == "dart")
    booster = Member(*booster, "gbtree");
  else if (*booster_name != "gbtree")
    return InvalidArgument("booster '" + Show(*booster_name) + "' is not supported (gbtree and dart are)");
  const json* model = booster ? Member(*booster, "model") : nullptr;
  const json* trees = model ? Member(*model, "trees") : nullptr;
  const json* tree_info = model ? Member(*model, "tree_info") : nullptr;
  if (!trees || !trees->is_array() || !tree_info || !tree_info->is_array())
    return InvalidArgument("the model has no gbtree trees and tree_info");
  if (tree_info->size() != trees->size())
    return InvalidArgument("tree_info lists " + std::to_string(tree_info->size()) + " trees, the model has " +
                           std::to_string(trees->size()));
  return Booster{model, trees, tree_info};
}

// The objective, its link, the number of outputs and features, and each output's base margin.
Status ReadOutputs(const json& learner, const json& param, Forest& f) {
  const json* objective = Member(learner, "objective");
  const json* objective_name = objective ? Member(*objective, "name") : nullptr;
  if (!objective_name || !objective_name->is_string()) return InvalidArgument("the model has no objective name");
  f.objective = objective_name->get<std::string>();
  SERVING_ASSIGN_OR_RETURN(auto kind, ReadObjective(f.objective));
  f.link = kind.link;
  f.classifier = kind.classifier;
  SERVING_ASSIGN_OR_RETURN(auto num_class, Count(Member(param, "num_class"), "num_class", 1 << 20));
  SERVING_ASSIGN_OR_RETURN(auto num_feature, Count(Member(param, "num_feature"), "num_feature", 1 << 24));
  int64_t num_target = 1;
  if (const json* t = Member(param, "num_target")) {
    SERVING_ASSIGN_OR_RETURN(auto n, Count(t, "num_target", 1 << 20));
    num_target = std::max<int64_t>(1, n);
  }
  if (num_class > 1 && num_target > 1) return InvalidArgument("a model with both classes and targets");
  f.num_outputs = static_cast<uint32_t>(std::max(num_class, num_target));
  if ((f.link == Link::kSoftmax || f.link == Link::kArgmax) && f.num_outputs < 2)
    return InvalidArgument("objective " + f.objective + " with num_class " + std::to_string(num_class));
  f.num_features = static_cast<uint32_t>(num_feature);
  SERVING_ASSIGN_OR_RETURN(auto base_score, Numbers(Member(param, "base_score"), "base_score"));
  if (base_score.size() != 1 && base_score.size() != f.num_outputs)
    return InvalidArgument("base_score has " + std::to_string(base_score.size()) + " values for " +
                           std::to_string(f.num_outputs) + " outputs");
  for (uint32_t k = 0; k < f.num_outputs; ++k) {
    const auto score = static_cast<float>(base_score[base_score.size() == 1 ? 0 : k]);
    const float margin = BaseMargin(score, kind.base);
    if (!std::isfinite(margin)) return InvalidArgument("base_score " + std::to_string(score) + " has no margin");
    f.base_margin.push_back(margin);
  }
  return Status::Ok();
}

// The model's feature names, or XGBoost's own f0, f1, ... when it has none.
Status ReadFeatureNames(const json& learner, Forest& f) {
  if (const json* names = Member(learner, "feature_names"); names && names->is_array() && !names->empty()) {
    for (const json& n : *names) {
      if (!n.is_string()) return InvalidArgument("feature_names holds a value that is not a string");
      f.feature_names.push_back(n.get<std::string>());
    }
  } else {
    for (uint32_t i = 0; i < f.num_features; ++i) f.feature_names.push_back("f" + std::to_string(i));
  }
  return Status::Ok();
}

// How many trees to use: all, or with early stopping those up to best_iteration (each iteration holds
// num_outputs x num_parallel_tree trees).
StatusOr<size_t> TreesToKeep(const json& learner, const Booster& b, uint32_t num_outputs, bool use_best_iteration) {
  size_t keep = b.trees->size();
  const json* attributes = Member(learner, "attributes");
  const json* best = attributes ? Member(*attributes, "best_iteration") : nullptr;
  if (!best || !use_best_iteration) return keep;
  SERVING_ASSIGN_OR_RETURN(auto iteration, Count(best, "best_iteration", INT32_MAX));
  int64_t parallel = 1;
  const json* gbtree_param = Member(*b.model, "gbtree_model_param");
  if (const json* p = gbtree_param ? Member(*gbtree_param, "num_parallel_tree") : nullptr) {
    SERVING_ASSIGN_OR_RETURN(auto n, Count(p, "num_parallel_tree", 1 << 20));
    parallel = std::max<int64_t>(1, n);
  }
  const auto per_iteration = static_cast<size_t>(parallel) * num_outputs;
  return std::min(keep, static_cast<size_t>(iteration + 1) * per_iteration);
}

StatusOr<Forest> FromDocument(const json& doc, bool use_best_iteration) {
  const json* learner = Member(doc, "learner");
  if (!learner) return InvalidArgument("not an XGBoost JSON model (no 'learner')");
  const json* param = Member(*learner, "learner_model_param");
  if (!param) return InvalidArgument("the model has no learner_model_param");
  SERVING_ASSIGN_OR_RETURN(const Booster booster, FindBooster(*learner));
  Forest f;
  f.library = Library::kXgboost;
  SERVING_RETURN_IF_ERROR(ReadOutputs(*learner, *param, f));
  SERVING_RETURN_IF_ERROR(ReadFeatureNames(*learner, f));
  SERVING_ASSIGN_OR_RETURN(const size_t keep, TreesToKeep(*learner, booster, f.num_outputs, use_best_iteration));
  for (size_t i = 0; i < keep; ++i) {
    const std::string where = "tree " + std::to_string(i);
    SERVING_ASSIGN_OR_RETURN(auto tree, ReadTree((*booster.trees)[i], where, f.bitsets));
    const json& group = (*booster.tree_info)[i];
    if (!group.is_number_integer() || group.get<int64_t>() < 0 || group.get<int64_t>() >= f.num_outputs)
      return InvalidArgument(where + ": tree_info names output " + Show(group) + " of " +
                             std::to_string(f.num_outputs));
    tree.output = static_cast<uint32_t>(group.get<int64_t>());
    f.trees.push_back(std::move(tree));
  }
  SERVING_RETURN_IF_ERROR(f.Check());
  return f;
}

}  // namespace

StatusOr<Forest> ParseXgboostJson(std::string_view text, bool use_best_iteration) {
  SERVING_ASSIGN_OR_RETURN(auto doc, Document(text, json::input_format_t::json));
  return FromDocument(doc, use_best_iteration);
}

StatusOr<Forest> ParseXgboostUbjson(std::string_view text, bool use_best_iteration) {
  SERVING_ASSIGN_OR_RETURN(auto doc, Document(text, json::input_format_t::ubjson));
  return FromDocument(doc, use_best_iteration);
}

}  // namespace serving::trees
