// The KServe v2 decoders' shared contract. The REST JSON decoder (frontends/http/v2_json) and the protobuf
// decoder (v2_codec) stay separate, since going through the protobuf message would copy every tensor, but
// they check the same things with these functions, so a mistake reads the same whichever protocol carried
// it; what they leave to the core (shapes, sizes, names against the model) is shared by construction.
// tests/e2e/test_v2_contract.py runs one table of mistakes over both and compares the answers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "core/inference_server.h"

namespace serving::frontends::v2 {

// `inputs` is absent or empty.
Status NoInputs();
// inputs[index] has an empty or no name.
Status InputWithoutName(size_t index);
// The datatype of `input`, or why `datatype` is not one.
StatusOr<DataType> InputDatatype(std::string_view input, std::string_view datatype);
// `input` carries its values both in the message and as binary data (binary_data_size / raw_input_contents).
Status DataSentTwice(std::string_view input);
// Whether an input of `shape` must carry values: any shape but one with zero elements (which has nothing to
// send on either protocol; the core then judges the empty tensor like any other, e.g. "batch size is 0").
bool NeedsData(const Shape& shape);
// `input` has no values and its shape says it should.
Status NoData(std::string_view input);
// Element `index` of `input`, written `value`, does not fit `dtype`.
Status NotAValid(std::string_view input, size_t index, std::string_view value, DataType dtype);
// A requested output with an empty or no name.
Status OutputWithoutName();

// Triton's schedule-policy request parameters: `priority` (1 the highest level, 0 the model's default) and
// `timeout` (microseconds in the queue). The names this server reads from a request's `parameters`.
inline constexpr std::string_view kSchedulingParameters[] = {"priority", "timeout"};
// Sets request parameter `name` (one of kSchedulingParameters) on `request`; `value` is nullopt when the
// parameter is not a non-negative integer, which is refused.
Status SetSchedulingParameter(std::string_view name, std::optional<uint64_t> value, InferRequest& request);

}  // namespace serving::frontends::v2
