// libFuzzer target: an inference.v1 REST body (`POST /v1/infer`) as the HTTP frontend reads it: the nesting
// scan and protobuf's JSON mapping (frontends/common/json_print.h), then the rows decoded into one
// [rows, features] tensor (frontends/common/v1_codec.h) for a model with named features and for one without,
// then the core's validator. No input may crash, leak or hang.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/model_settings.h"
#include "frontends/common/json_print.h"
#include "frontends/common/v1_codec.h"
#include "fuzz_support.h"

namespace {

constexpr int kV1RequestDepth = 4;  // as v1_routes.cc: {"rows": [{"values": [...]}]}

struct Model {
  serving::ModelSettings config;
  serving::ModelSignature signature;
};

const Model& Named() {
  static const Model m = [] {
    Model m;
    m.config.name = "named";
    m.config.feature_names = {"a", "b", "c", "d"};
    m.signature.inputs = {{"x", serving::DataType::kFp32, {-1, 4}}};
    m.signature.outputs = {{"y", serving::DataType::kFp32, {-1, 1}}};
    return m;
  }();
  return m;
}

const Model& Unnamed() {
  static const Model m = [] {
    Model m;
    m.config.name = "unnamed";
    m.signature.inputs = {{"x", serving::DataType::kFp64, {-1, -1}}};
    m.signature.outputs = {{"y", serving::DataType::kFp32, {-1, 1}}};
    return m;
  }();
  return m;
}

void Decode(const inference::v1::InferRequest& in, const Model& m) {
  serving::InferRequest request;
  if (!serving::frontends::DecodeV1Rows(in, serving::ModelView{m.config, 1, m.signature}, request).ok()) return;
  for (const serving::Tensor& t : request.inputs)
    for (std::byte b : t.bytes()) (void)b;
  if (serving::ValidateRequest(m.signature, 0, &request).ok()) serving::fuzzing::Accepted();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  serving::fuzzing::Signature();
  inference::v1::InferRequest in;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  if (!serving::frontends::ProtoFromJson(body, &in, kV1RequestDepth).ok()) return 0;
  Decode(in, Named());
  Decode(in, Unnamed());
  return 0;
}
