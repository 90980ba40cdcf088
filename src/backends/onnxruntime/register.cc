#include "backends/onnxruntime/onnxruntime_backend.h"

namespace serving::onnxruntime {

void Register(BackendRegistry* registry, const BackendOptions& options) {
  registry->Register("onnxruntime", CreateBackend(options));
}

}  // namespace serving::onnxruntime
