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
};

struct ModelSignature {
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
};

}  // namespace serving
