// XGBoost's JSON and UBJSON model formats (Booster.save_model("model.json" / "model.ubj"), 2.x and 3.x): the learner's
// parameters (classes, features, base score), its objective and the gbtree's trees, into a checked Forest.
// Categorical splits (XGBoost's `categories` lists) become category bitsets. A model the engine does not
// evaluate as XGBoost does (gblinear, vector leaves, an unknown objective) is an error naming it.
#pragma once

#include <string_view>

#include "backends/trees/forest.h"

namespace serving::trees {

// `use_best_iteration`: only the trees up to the file's best_iteration (early stopping), as XGBoost's
// scikit-learn predict() does; otherwise every tree.
StatusOr<Forest> ParseXgboostJson(std::string_view text, bool use_best_iteration = true);
// The same model in UBJSON (Booster.save_model("model.ubj"), XGBoost's default format since 2.1).
StatusOr<Forest> ParseXgboostUbjson(std::string_view text, bool use_best_iteration = true);

}  // namespace serving::trees
