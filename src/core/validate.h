// Checks a request against the model it will run on. This is the only place where inputs are checked
// against a model's signature, so every protocol rejects the same input with the same message.
#pragma once

#include <cstdint>

#include "core/backend.h"
#include "core/infer_request.h"

namespace serving {

// Every model input present exactly once and nothing else; datatypes, ranks and fixed dimensions
// match; byte sizes agree with shapes; all inputs share one batch size of at most `max_batch_size`
// (0 = unlimited); requested outputs exist. Fills `request->requested_outputs` with every output
// when it is empty.
Status ValidateRequest(const ModelSignature& signature, uint32_t max_batch_size, InferRequest* request);

}  // namespace serving
