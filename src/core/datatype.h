// Element datatypes (the KServe v2 set) and the one dispatch on them: VisitDataType() gives a function the
// C++ element type of a datatype, so every codec (tensor.cc, the v2 JSON and protobuf codecs, backends)
// handles all datatypes through the same table instead of a switch of its own.
//
// BYTES elements have no fixed size: a BYTES tensor holds KServe's binary form, each element a 4-byte
// little-endian length followed by its bytes (what the binary tensor extension and raw_input_contents
// carry), so it travels without conversion wherever the wire format already uses that form.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

namespace serving {

enum class DataType {
  kInvalid,
  kBool,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kUint8,
  kUint16,
  kUint32,
  kUint64,
  kFp16,
  kBf16,
  kFp32,
  kFp64,
  kBytes,
};

// IEEE 754 binary16 and bfloat16 as stored (their bits); arithmetic goes through float.
struct Float16 {
  uint16_t bits;
};
struct BFloat16 {
  uint16_t bits;
};
float ToFloat(Float16 h);
float ToFloat(BFloat16 b);
// Round to nearest even; out-of-range values become infinity (callers reject those).
Float16 ToFloat16(float f);
BFloat16 ToBFloat16(float f);

template <typename T>
inline constexpr bool kIsFloating =
    std::is_floating_point_v<T> || std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>;

// Bytes per element; 0 for kInvalid and kBytes (variable).
size_t ByteSize(DataType dtype);
// KServe v2 names: "FP32", "INT64", "BOOL", "BYTES", ...
const char* DataTypeName(DataType dtype);
// Parses a v2 name; kInvalid when unknown.
DataType DataTypeFromName(std::string_view name);

// Calls f(std::type_identity<T>{}) with T the element type of `dtype`: bool, int8_t ... uint64_t,
// Float16, BFloat16, float, double; with T = void for kBytes and kInvalid, which have no fixed-size type.
template <typename F>
decltype(auto) VisitDataType(DataType dtype, F&& f) {
  switch (dtype) {
    case DataType::kBool: return f(std::type_identity<bool>{});
    case DataType::kInt8: return f(std::type_identity<int8_t>{});
    case DataType::kInt16: return f(std::type_identity<int16_t>{});
    case DataType::kInt32: return f(std::type_identity<int32_t>{});
    case DataType::kInt64: return f(std::type_identity<int64_t>{});
    case DataType::kUint8: return f(std::type_identity<uint8_t>{});
    case DataType::kUint16: return f(std::type_identity<uint16_t>{});
    case DataType::kUint32: return f(std::type_identity<uint32_t>{});
    case DataType::kUint64: return f(std::type_identity<uint64_t>{});
    case DataType::kFp16: return f(std::type_identity<Float16>{});
    case DataType::kBf16: return f(std::type_identity<BFloat16>{});
    case DataType::kFp32: return f(std::type_identity<float>{});
    case DataType::kFp64: return f(std::type_identity<double>{});
    case DataType::kBytes:
    case DataType::kInvalid: break;
  }
  return f(std::type_identity<void>{});
}

// One element as a double (bool 0/1; 64-bit integers may round).
template <typename T>
double ToDouble(T v) {
  if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>) {
    return ToFloat(v);
  } else {
    return static_cast<double>(v);
  }
}

// `v` as a T when T can hold it: integers exactly (1.5 or 300 do not fit INT8), bool only 0 or 1,
// floating types any finite value within range (rounded) and infinities/NaN as themselves.
template <typename T>
std::optional<T> FromDouble(double v) {
  if constexpr (std::is_same_v<T, bool>) {
    if (v != 0.0 && v != 1.0) return std::nullopt;
    return v != 0.0;
  } else if constexpr (std::is_integral_v<T>) {
    // T's range as doubles: min is exact (0 or -2^k) and max + 1 rounds to exactly 2^k.
    constexpr auto kMin = static_cast<double>(std::numeric_limits<T>::min());
    constexpr auto kEnd = static_cast<double>(std::numeric_limits<T>::max()) + 1.0;
    if (!std::isfinite(v) || std::trunc(v) != v || v < kMin || v >= kEnd) return std::nullopt;
    return static_cast<T>(v);
  } else {
    const auto f = static_cast<float>(v);
    T out;
    if constexpr (std::is_same_v<T, Float16>) {
      out = ToFloat16(f);
    } else if constexpr (std::is_same_v<T, BFloat16>) {
      out = ToBFloat16(f);
    } else {
      out = static_cast<T>(v);
    }
    if (std::isfinite(v) && !std::isfinite(ToDouble(out))) return std::nullopt;  // out of T's range
    return out;
  }
}

// BYTES elements: appends one in the binary form; splits a buffer into its elements (nullopt when the
// lengths do not add up to the buffer exactly).
void AppendBytesElement(std::vector<std::byte>& out, std::string_view element);
std::optional<std::vector<std::string_view>> SplitBytesElements(std::span<const std::byte> buffer);

}  // namespace serving
