// The `trees` backend: LightGBM text models and XGBoost JSON models served as the library saved them, with the
// library's own predictions (backends/trees/forest.h). Registered twice: as "trees", and as "fil" so that a
// repository written for Triton's FIL backend loads unchanged (docs/model-repository.md#tree-models).
//
// One input (config's name, else input__0): FP32 [batch, features]. Outputs: the prediction (config's first
// output name, else output__0) and `margin`, the summed raw scores [batch, classes or 1]. The prediction is
// what the library's predict() returns unless FIL's parameters ask otherwise: output_class (or is_classifier)
// "true" gives the class index (binary: probability > threshold), with predict_proba "true" one probability
// per class instead (binary: [1 - p, p]).
#pragma once

#include <memory>

#include "core/backend.h"

namespace serving::trees {

std::unique_ptr<Backend> CreateBackend();

// Registers the backend as "trees" and as "fil".
void Register(BackendRegistry* registry);

}  // namespace serving::trees
