// ONNX Runtime backend (CPU): loads DIR/<version>/model.onnx into one Ort::Session per version and
// runs it. Inputs and outputs come from the model file itself; ONNX Runtime's exceptions stop here
// and become Status values.
#pragma once

#include <cstdint>
#include <memory>

#include "core/backend.h"

namespace serving::onnxruntime {

struct BackendOptions {
  // Defaults for models whose config leaves onnxruntime.{intra,inter}_op_threads at 0.
  uint32_t intra_op_threads = 1;
  uint32_t inter_op_threads = 1;
};

std::unique_ptr<Backend> CreateBackend(const BackendOptions& options);

// Registers the backend as "onnxruntime".
void Register(BackendRegistry* registry, const BackendOptions& options);

}  // namespace serving::onnxruntime
