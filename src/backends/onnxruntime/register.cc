#include "backends/onnxruntime/onnxruntime_backend.h"

namespace serving::onnxruntime {

void Register(BackendRegistry* registry, const BackendOptions& options) {
  registry->Register("onnxruntime", CreateBackend(options));
  registry->SetDefault("onnxruntime");  // a config naming neither platform nor backend is an ONNX model
}

}  // namespace serving::onnxruntime
