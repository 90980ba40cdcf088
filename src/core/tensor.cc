#include "core/tensor.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace serving {
namespace {

struct TypeInfo {
  DataType dtype;
  const char* name;
  size_t size;
};

constexpr TypeInfo kTypes[] = {
    {DataType::kBool, "BOOL", 1},     {DataType::kInt8, "INT8", 1},     {DataType::kInt16, "INT16", 2},
    {DataType::kInt32, "INT32", 4},   {DataType::kInt64, "INT64", 8},   {DataType::kUint8, "UINT8", 1},
    {DataType::kUint16, "UINT16", 2}, {DataType::kUint32, "UINT32", 4}, {DataType::kUint64, "UINT64", 8},
    {DataType::kFp32, "FP32", 4},     {DataType::kFp64, "FP64", 8},
};

template <typename T>
T Load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Encodes one value into T, rejecting values T cannot hold exactly (integers) or at all (floats).
template <typename T>
bool Store(double v, std::byte* out) {
  T t;
  if constexpr (std::is_same_v<T, bool>) {
    if (v != 0.0 && v != 1.0) return false;
    t = v != 0.0;
  } else if constexpr (std::is_integral_v<T>) {
    if (!std::isfinite(v) || std::trunc(v) != v) return false;
    if (v < static_cast<double>(std::numeric_limits<T>::min()) ||
        v > static_cast<double>(std::numeric_limits<T>::max()))
      return false;
    t = static_cast<T>(v);
  } else {
    if (std::isfinite(v) && std::fabs(v) > static_cast<double>(std::numeric_limits<T>::max())) return false;
    t = static_cast<T>(v);
  }
  std::memcpy(out, &t, sizeof(T));
  return true;
}

}  // namespace

size_t ByteSize(DataType dtype) {
  for (const auto& t : kTypes)
    if (t.dtype == dtype) return t.size;
  return 0;
}

const char* DataTypeName(DataType dtype) {
  for (const auto& t : kTypes)
    if (t.dtype == dtype) return t.name;
  return "INVALID";
}

DataType DataTypeFromName(std::string_view name) {
  for (const auto& t : kTypes)
    if (name == t.name) return t.dtype;
  return DataType::kInvalid;
}

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
  const std::byte* p = t.data + i * ByteSize(t.dtype);
  switch (t.dtype) {
    case DataType::kBool: return Load<uint8_t>(p) ? 1.0 : 0.0;
    case DataType::kInt8: return Load<int8_t>(p);
    case DataType::kInt16: return Load<int16_t>(p);
    case DataType::kInt32: return Load<int32_t>(p);
    case DataType::kInt64: return static_cast<double>(Load<int64_t>(p));
    case DataType::kUint8: return Load<uint8_t>(p);
    case DataType::kUint16: return Load<uint16_t>(p);
    case DataType::kUint32: return Load<uint32_t>(p);
    case DataType::kUint64: return static_cast<double>(Load<uint64_t>(p));
    case DataType::kFp32: return Load<float>(p);
    case DataType::kFp64: return Load<double>(p);
    case DataType::kInvalid: break;
  }
  return 0.0;
}

StatusOr<std::vector<std::byte>> EncodeDoubles(std::span<const double> values, DataType dtype, std::string_view what) {
  const size_t size = ByteSize(dtype);
  if (size == 0) return InvalidArgument(std::string(what) + ": unsupported datatype");
  std::vector<std::byte> out(values.size() * size);
  for (size_t i = 0; i < values.size(); ++i) {
    std::byte* p = out.data() + i * size;
    bool ok = false;
    switch (dtype) {
      case DataType::kBool: ok = Store<bool>(values[i], p); break;
      case DataType::kInt8: ok = Store<int8_t>(values[i], p); break;
      case DataType::kInt16: ok = Store<int16_t>(values[i], p); break;
      case DataType::kInt32: ok = Store<int32_t>(values[i], p); break;
      case DataType::kInt64: ok = Store<int64_t>(values[i], p); break;
      case DataType::kUint8: ok = Store<uint8_t>(values[i], p); break;
      case DataType::kUint16: ok = Store<uint16_t>(values[i], p); break;
      case DataType::kUint32: ok = Store<uint32_t>(values[i], p); break;
      case DataType::kUint64: ok = Store<uint64_t>(values[i], p); break;
      case DataType::kFp32: ok = Store<float>(values[i], p); break;
      case DataType::kFp64: ok = Store<double>(values[i], p); break;
      case DataType::kInvalid: break;
    }
    if (!ok) {
      return InvalidArgument(std::string(what) + "[" + std::to_string(i) + "]: value " + std::to_string(values[i]) +
                             " does not fit " + DataTypeName(dtype));
    }
  }
  return out;
}

}  // namespace serving
