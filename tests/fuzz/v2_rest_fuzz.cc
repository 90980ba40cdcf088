// libFuzzer target: a KServe v2 REST inference body as the HTTP frontend reads it (frontends/http/v2_json.h):
// JSON alone, or the binary tensor extension (a JSON header of Inference-Header-Content-Length bytes, then raw
// tensors), parsed in place or from a padded copy, then checked against a model signature by the core's one
// validator. No input may crash, leak or hang, and every tensor the parser hands on must be readable whole.
// Input: byte 0 picks the form (bit 0: binary extension, bit 1: in place); with the extension, bytes 1-2 are
// the header length (little-endian); the rest is the body.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

#include "frontends/http/v2_json.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  serving::fuzzing::Signature();
  if (size < 3) return 0;
  const uint8_t form = data[0];
  std::optional<size_t> header_length;
  if (form & 1) header_length = static_cast<size_t>(data[1]) | (static_cast<size_t>(data[2]) << 8);
  // The body in a buffer of its own (so ASan sees its end), with 64 readable bytes past it when in place.
  const size_t body_size = size - 3;
  const size_t spare = (form & 2) ? 64 : 0;
  std::vector<char> buffer(body_size + spare);
  if (body_size > 0) std::memcpy(buffer.data(), data + 3, body_size);
  auto parsed = serving::frontends::ParseV2InferBody(std::string_view(buffer.data(), body_size), header_length,
                                                     body_size + spare);
  if (parsed.ok()) serving::fuzzing::Exercise(parsed->request);
  return 0;
}
