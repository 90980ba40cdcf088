// libFuzzer target: a KServe v2 gRPC ModelInferRequest as the gRPC frontend decodes it: protobuf's wire format
// (typed contents or raw_input_contents), then frontends/common/v2_codec.h into the core's request, then the
// core's validator against a model signature. No input may crash, leak or hang, and every tensor handed on
// must be readable whole (raw bytes against shape and datatype).
#include <cstddef>
#include <cstdint>

#include "frontends/common/v2_codec.h"
#include "fuzz_support.h"
#include "kserve/v2/grpc_predict_v2.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  serving::fuzzing::Signature();
  inference::ModelInferRequest message;
  if (!message.ParseFromArray(data, static_cast<int>(size))) return 0;
  serving::InferRequest request;
  if (serving::frontends::DecodeV2Request(message, request).ok()) serving::fuzzing::Exercise(request);
  return 0;
}
