// What the request fuzz targets share: a model signature to check decoded requests against, and a walk over
// every byte a decoded tensor claims, so a length the decoder got wrong is an out-of-bounds read under ASan.
#pragma once

#include <cstdlib>

#include "core/infer_request.h"
#include "core/model_signature.h"
#include "core/validate.h"
#include "observability/logger.h"

namespace serving::fuzzing {

// Inputs that went through the whole target (decoded and validated); replay_main.cc requires some, so a seed
// corpus that only reaches the first refusal fails its ctest.
inline size_t accepted_inputs = 0;
inline void Accepted() { ++accepted_inputs; }

// x: FP32 [-1, 4]; ids: INT64 [-1, 2]; text: BYTES [-1]; outputs y and label.
inline const ModelSignature& Signature() {
  static const ModelSignature signature = [] {
    serving::logging::Configure(serving::logging::Level::kError, serving::logging::Format::kJson);
    ModelSignature s;
    s.inputs = {{"x", DataType::kFp32, {-1, 4}}, {"ids", DataType::kInt64, {-1, 2}}, {"text", DataType::kBytes, {-1}}};
    s.outputs = {{"y", DataType::kFp32, {-1, 1}}, {"label", DataType::kInt64, {-1}}};
    return s;
  }();
  return signature;
}

// Reads every byte of every input (ASan checks the claimed lengths) and checks that what the core accepted
// is consistent: a validated request's tensors hold exactly the bytes their shapes say.
inline void Exercise(InferRequest& request) {
  unsigned sum = 0;
  for (const Tensor& t : request.inputs)
    for (std::byte b : t.bytes()) sum += static_cast<unsigned>(b);
  volatile unsigned sink = sum;
  (void)sink;
  if (!ValidateRequest(Signature(), 8, &request).ok()) return;
  if (request.requested_outputs.empty()) std::abort();  // validation fills them in
  Accepted();
}

}  // namespace serving::fuzzing

extern "C" size_t FuzzAcceptedInputs() { return serving::fuzzing::accepted_inputs; }
