// What a model version takes and gives: its input and output tensors. Backends report it, the core
// validates requests against it, and frontends decode against it and describe it (model metadata).
#pragma once

#include <string>
#include <vector>

#include "core/tensor.h"

namespace serving {

struct TensorSpec {
  std::string name;
  DataType dtype = DataType::kInvalid;
  Shape shape;  // includes the batch dimension; -1 marks a variable dimension
  // NaN (a tree ensemble's missing value) and infinities that mean something to the model; otherwise an input
  // holding them is refused.
  bool nan_allowed = false;
  bool infinity_allowed = false;
};

struct ModelSignature {
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
  // The names of the one input's columns when the model file records them (tree ensembles); a config's
  // feature_names parameter takes precedence.
  std::vector<std::string> feature_names;
};

}  // namespace serving
