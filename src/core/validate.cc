#include "core/validate.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace serving {
namespace {

Status CheckInput(const TensorSpec& spec, const Tensor& t) {
  const std::string where = "input " + Quote(t.name);
  if (t.dtype != spec.dtype)
    return InvalidArgument(where + ": datatype " + DataTypeName(t.dtype) + " does not match the model's " +
                           DataTypeName(spec.dtype));
  if (t.shape.size() != spec.shape.size())
    return InvalidArgument(where + ": shape " + ShapeToString(t.shape) + " has rank " + std::to_string(t.shape.size()) +
                           ", the model expects " + ShapeToString(spec.shape));
  for (size_t d = 0; d < t.shape.size(); ++d) {
    if (t.shape[d] < 0)
      return InvalidArgument(where + ": shape " + ShapeToString(t.shape) + " has a negative dimension");
    if (spec.shape[d] >= 0 && spec.shape[d] != t.shape[d])
      return InvalidArgument(where + ": shape " + ShapeToString(t.shape) + " does not match the model's " +
                             ShapeToString(spec.shape));
  }
  auto count = ElementCount(t.shape);
  if (!count) return InvalidArgument(where + ": shape " + ShapeToString(t.shape) + " is too large");
  if (t.dtype == DataType::kBytes) {
    auto elements = SplitBytesElements(t.bytes());
    if (!elements)
      return InvalidArgument(where +
                             ": BYTES data is malformed: each element is a 4-byte little-endian length "
                             "followed by that many bytes, and the lengths must add up to the data's " +
                             std::to_string(t.byte_size) + " bytes");
    if (elements->size() != static_cast<size_t>(*count))
      return InvalidArgument(where + ": has " + std::to_string(elements->size()) + " BYTES elements, shape " +
                             ShapeToString(t.shape) + " needs " + std::to_string(*count));
    return Status::Ok();
  }
  const size_t expected = static_cast<size_t>(*count) * ByteSize(t.dtype);
  if (t.byte_size != expected)
    return InvalidArgument(where + ": has " + std::to_string(t.byte_size) + " bytes of data, shape " +
                           ShapeToString(t.shape) + " of " + DataTypeName(t.dtype) + " needs " +
                           std::to_string(expected));
  return Status::Ok();
}

// NaN and infinities are not numbers a model was trained on (unless its signature says so: tree ensembles read
// NaN as missing): a classifier given them still answers with a confident label. They can arrive as "NaN"/"Infinity" in
// /v1 JSON or as raw bytes in v2 binary data.
Status CheckFinite(const TensorSpec& spec, const Tensor& t) {
  if (spec.nan_allowed && spec.infinity_allowed) return Status::Ok();
  return VisitDataType(t.dtype, [&](auto type) {
    using T = typename decltype(type)::type;
    if constexpr (kIsFloating<T>) {
      const size_t n = t.byte_size / sizeof(T);
      for (size_t i = 0; i < n; ++i) {
        T v;
        std::memcpy(&v, t.data + i * sizeof(T), sizeof(T));  // binary data need not be aligned
        const double d = ToDouble(v);
        if (std::isnan(d) && !spec.nan_allowed)
          return InvalidArgument("input " + Quote(t.name) + ": element " + std::to_string(i) +
                                 " is NaN; the model takes " +
                                 (spec.infinity_allowed ? "no NaN" : "finite numbers only"));
        if (std::isinf(d) && !spec.infinity_allowed)
          return InvalidArgument(
              "input " + Quote(t.name) + ": element " + std::to_string(i) + " is infinite; the model " +
              (spec.nan_allowed ? "takes NaN for a missing value, no infinities" : "takes finite numbers only"));
      }
    }
    return Status::Ok();
  });
}

}  // namespace

Status ValidateRequest(const ModelSignature& sig, uint32_t max_batch_size, InferRequest* request) {
  for (const auto& t : request->inputs) {
    auto spec =
        std::find_if(sig.inputs.begin(), sig.inputs.end(), [&](const TensorSpec& s) { return s.name == t.name; });
    if (spec == sig.inputs.end()) return InvalidArgument("input " + Quote(t.name) + " is not an input of the model");
    auto n = std::count_if(request->inputs.begin(), request->inputs.end(),
                           [&](const Tensor& o) { return o.name == t.name; });
    if (n > 1) return InvalidArgument("input " + Quote(t.name) + " is given more than once");
    SERVING_RETURN_IF_ERROR(CheckInput(*spec, t));
    SERVING_RETURN_IF_ERROR(CheckFinite(*spec, t));
  }
  for (const auto& spec : sig.inputs) {
    bool present = std::any_of(request->inputs.begin(), request->inputs.end(),
                               [&](const Tensor& t) { return t.name == spec.name; });
    if (!present) return InvalidArgument("input '" + spec.name + "' is missing");
  }
  int64_t batch = -1;
  for (const auto& t : request->inputs) {
    if (t.shape.empty()) continue;
    if (batch >= 0 && t.shape[0] != batch)
      return InvalidArgument("inputs disagree on the batch size (" + std::to_string(batch) + " vs " +
                             std::to_string(t.shape[0]) + " in '" + t.name + "')");
    batch = t.shape[0];
  }
  if (max_batch_size > 0 && batch > static_cast<int64_t>(max_batch_size))
    return InvalidArgument("batch size " + std::to_string(batch) + " exceeds the model's max_batch_size " +
                           std::to_string(max_batch_size));
  if (batch == 0) return InvalidArgument("batch size is 0: send at least one row");

  if (request->requested_outputs.empty()) {
    for (const auto& o : sig.outputs) request->requested_outputs.push_back(o.name);
  }
  for (size_t i = 0; i < request->requested_outputs.size(); ++i) {
    const std::string& name = request->requested_outputs[i];
    if (std::find(request->requested_outputs.begin(), request->requested_outputs.begin() + i, name) !=
        request->requested_outputs.begin() + i)
      return InvalidArgument("requested output " + Quote(name) + " is asked for more than once");
    bool known =
        std::any_of(sig.outputs.begin(), sig.outputs.end(), [&](const TensorSpec& s) { return s.name == name; });
    if (!known) return InvalidArgument("requested output " + Quote(name) + " is not an output of the model");
  }
  return Status::Ok();
}

}  // namespace serving
