#include "frontends/common/v2_contract.h"

#include <string>

namespace serving::frontends::v2 {

Status NoInputs() { return InvalidArgument("inputs is missing or empty: send at least one input"); }

Status InputWithoutName(size_t index) { return InvalidArgument("inputs[" + std::to_string(index) + "] has no name"); }

StatusOr<DataType> InputDatatype(std::string_view input, std::string_view datatype) {
  if (datatype.empty()) return InvalidArgument("input " + Quote(input) + ": datatype is missing");
  const DataType d = DataTypeFromName(datatype);
  if (d == DataType::kInvalid)
    return InvalidArgument("input " + Quote(input) + ": datatype " + Quote(datatype) +
                           " is not a KServe v2 datatype (BOOL, INT8-64, UINT8-64, FP16, BF16, FP32, FP64, BYTES)");
  return d;
}

Status DataSentTwice(std::string_view input) {
  return InvalidArgument("input " + Quote(input) +
                         ": has its values both in the message and as binary data; send them one way");
}

bool NeedsData(const Shape& shape) { return ElementCount(shape).value_or(1) != 0; }

Status NoData(std::string_view input) { return InvalidArgument("input " + Quote(input) + ": has no data"); }

Status NotAValid(std::string_view input, size_t index, std::string_view value, DataType dtype) {
  return InvalidArgument("input " + Quote(input) + ": element " + std::to_string(index) + " (" + Excerpt(value, 64) +
                         ") is not a valid " + DataTypeName(dtype));
}

Status OutputWithoutName() { return InvalidArgument("outputs: each requested output needs a name"); }

Status SetSchedulingParameter(std::string_view name, std::optional<uint64_t> value, InferRequest& request) {
  if (!value)
    return InvalidArgument("parameters." + std::string(name) + " must be a non-negative integer" +
                           (name == "timeout" ? " (microseconds)" : " (1 is the highest priority, 0 the default)"));
  (name == "priority" ? request.priority : request.timeout_us) = *value;
  return Status::Ok();
}

}  // namespace serving::frontends::v2
