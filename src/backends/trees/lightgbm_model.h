// LightGBM's text model format (what Booster.save_model writes, model.txt): the header (classes, trees per
// iteration, features, objective) and every tree, into a checked Forest. Anything the engine does not evaluate
// the way LightGBM does (linear trees, an unknown objective or decision type) is an error naming it.
#pragma once

#include <string_view>

#include "backends/trees/forest.h"

namespace serving::trees {

StatusOr<Forest> ParseLightGbm(std::string_view text);

}  // namespace serving::trees
