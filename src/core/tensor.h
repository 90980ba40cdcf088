// Tensors as the core sees them: a name, a datatype, a shape and a view of little-endian bytes.
// A Tensor never copies on its own: `data` points either into memory owned by `owner` (a buffer, an
// ONNX Runtime value) or into the frontend's request message, which outlives the request by contract
// (see InferRequest).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/datatype.h"
#include "core/status.h"

namespace serving {

using Shape = std::vector<int64_t>;

// "[2,30]"
std::string ShapeToString(const Shape& shape);
// Product of dims; nullopt when a dim is negative or the product overflows.
std::optional<int64_t> ElementCount(const Shape& shape);

struct Tensor {
  std::string name;
  DataType dtype = DataType::kInvalid;
  Shape shape;
  const std::byte* data = nullptr;
  size_t byte_size = 0;
  std::shared_ptr<const void> owner;  // keeps `data` alive when the tensor owns it

  std::span<const std::byte> bytes() const { return {data, byte_size}; }

  // A tensor owning `bytes`.
  static Tensor Owning(std::string name, DataType dtype, Shape shape, std::vector<std::byte> bytes);
  // A tensor viewing memory that the caller keeps alive.
  static Tensor Borrowed(std::string name, DataType dtype, Shape shape, const void* data, size_t size);
};

// Reads element `index` as a double (for JSON encoding and label lookup); 0 for BYTES.
double ElementAsDouble(const Tensor& tensor, size_t index);

// Converts doubles into `dtype`'s little-endian representation; fails when a value does not fit
// (e.g. 1.5 or 300 into INT8), naming `what`.
StatusOr<std::vector<std::byte>> EncodeDoubles(std::span<const double> values, DataType dtype, std::string_view what);

}  // namespace serving
