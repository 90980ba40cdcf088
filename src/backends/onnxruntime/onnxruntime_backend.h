// ONNX Runtime backend (CPU): loads DIR/<version>/model.onnx into one Ort::Session per version and
// runs it. Inputs and outputs come from the model file itself; ONNX Runtime's exceptions stop here
// and become Status values.
#pragma once

#include <cstdint>
#include <memory>

#include "core/backend.h"

namespace serving::onnxruntime {

struct BackendOptions {
  // Defaults for models whose config has no intra_op_thread_count / inter_op_thread_count parameter.
  // intra 0: the cores this process may use divided by the model's instances (at least 1), so instances x
  // intra-op threads never oversubscribe the cores unless a config or flag asks for it.
  uint32_t intra_op_threads = 0;
  uint32_t inter_op_threads = 1;
};

// The cores this process may run on: its CPU affinity, lowered by a cgroup v2 CPU quota (a Kubernetes CPU
// limit) when there is one; at least 1.
uint32_t AvailableCores();

std::unique_ptr<Backend> CreateBackend(const BackendOptions& options);

// Registers the backend as "onnxruntime".
void Register(BackendRegistry* registry, const BackendOptions& options);

}  // namespace serving::onnxruntime
