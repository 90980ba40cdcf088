#include "core/tensor.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace serving {
std::string ShapeToString(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::optional<int64_t> ElementCount(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return std::nullopt;
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) return std::nullopt;
    n *= d;
  }
  return n;
}

Tensor Tensor::Owning(std::string name, DataType dtype, Shape shape, std::vector<std::byte> bytes) {
  auto buffer = std::make_shared<std::vector<std::byte>>(std::move(bytes));
  Tensor t;
  t.name = std::move(name);
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.data = buffer->data();
  t.byte_size = buffer->size();
  t.owner = std::move(buffer);
  return t;
}

Tensor Tensor::Borrowed(std::string name, DataType dtype, Shape shape, const void* data, size_t size) {
  Tensor t;
  t.name = std::move(name);
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.data = static_cast<const std::byte*>(data);
  t.byte_size = size;
  return t;
}

double ElementAsDouble(const Tensor& t, size_t i) {
  return VisitDataType(t.dtype, [&](auto type) -> double {
    using T = typename decltype(type)::type;
    if constexpr (std::is_void_v<T>) {
      return 0.0;
    } else {
      T v;
      std::memcpy(&v, t.data + i * sizeof(T), sizeof(T));
      return ToDouble(v);
    }
  });
}

StatusOr<std::vector<std::byte>> EncodeDoubles(std::span<const double> values, DataType dtype, std::string_view what) {
  return VisitDataType(dtype, [&](auto type) -> StatusOr<std::vector<std::byte>> {
    using T = typename decltype(type)::type;
    if constexpr (std::is_void_v<T>) {
      return InvalidArgument(std::string(what) + ": numbers cannot make a " + DataTypeName(dtype) + " tensor");
    } else {
      std::vector<std::byte> out(values.size() * sizeof(T));
      for (size_t i = 0; i < values.size(); ++i) {
        const std::optional<T> v = FromDouble<T>(values[i]);
        if (!v)
          return InvalidArgument(std::string(what) + "[" + std::to_string(i) + "]: value " + std::to_string(values[i]) +
                                 " does not fit " + DataTypeName(dtype));
        std::memcpy(out.data() + i * sizeof(T), &*v, sizeof(T));
      }
      return out;
    }
  });
}

}  // namespace serving
