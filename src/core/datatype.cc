#include "core/datatype.h"

#include <cstring>

namespace serving {
namespace {

struct TypeInfo {
  DataType dtype;
  const char* name;
};

constexpr TypeInfo kTypes[] = {
    {DataType::kBool, "BOOL"},     {DataType::kInt8, "INT8"},     {DataType::kInt16, "INT16"},
    {DataType::kInt32, "INT32"},   {DataType::kInt64, "INT64"},   {DataType::kUint8, "UINT8"},
    {DataType::kUint16, "UINT16"}, {DataType::kUint32, "UINT32"}, {DataType::kUint64, "UINT64"},
    {DataType::kFp16, "FP16"},     {DataType::kBf16, "BF16"},     {DataType::kFp32, "FP32"},
    {DataType::kFp64, "FP64"},     {DataType::kBytes, "BYTES"},
};

uint32_t Bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  return x;
}

float FromBits(uint32_t x) {
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

}  // namespace

float ToFloat(Float16 h) {
  const uint32_t sign = static_cast<uint32_t>(h.bits & 0x8000) << 16;
  const uint32_t exp = (h.bits >> 10) & 0x1f;
  const uint32_t mant = h.bits & 0x3ff;
  if (exp == 0x1f) return FromBits(sign | 0x7f800000 | (mant << 13));  // infinity, NaN
  if (exp == 0) {                                                      // zero, subnormal: mant * 2^-24
    const float f = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -f : f;
  }
  return FromBits(sign | ((exp - 15 + 127) << 23) | (mant << 13));
}

Float16 ToFloat16(float f) {
  const uint32_t x = Bits(f);
  const auto sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t exp = (x >> 23) & 0xff;
  uint32_t mant = x & 0x7fffff;
  if (exp == 0xff) return {static_cast<uint16_t>(sign | 0x7c00 | (mant ? 0x200 : 0))};
  const int32_t e = static_cast<int32_t>(exp) - 127 + 15;  // the half's biased exponent
  if (e >= 0x1f) return {static_cast<uint16_t>(sign | 0x7c00)};
  if (e <= 0) {  // a half subnormal (or zero): the full mantissa shifted right, rounded to nearest even
    if (e < -10) return {sign};
    mant |= 0x800000;
    const auto shift = static_cast<uint32_t>(14 - e);
    uint32_t half = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half & 1))) ++half;
    return {static_cast<uint16_t>(sign | half)};
  }
  uint32_t half = sign | (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) ++half;  // a carry into the exponent is right (up to inf)
  return {static_cast<uint16_t>(half)};
}

float ToFloat(BFloat16 b) { return FromBits(static_cast<uint32_t>(b.bits) << 16); }

BFloat16 ToBFloat16(float f) {
  const uint32_t x = Bits(f);
  if ((x & 0x7fffffff) > 0x7f800000) return {static_cast<uint16_t>((x >> 16) | 0x40)};  // NaN stays NaN
  const uint32_t rounded = x + 0x7fff + ((x >> 16) & 1);                                // to nearest even
  return {static_cast<uint16_t>(rounded >> 16)};
}

size_t ByteSize(DataType dtype) {
  return VisitDataType(dtype, [](auto type) -> size_t {
    using T = typename decltype(type)::type;
    if constexpr (std::is_void_v<T>) {
      return 0;
    } else {
      return sizeof(T);
    }
  });
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

void AppendBytesElement(std::vector<std::byte>& out, std::string_view element) {
  const auto n = static_cast<uint32_t>(element.size());
  const uint8_t le[4] = {static_cast<uint8_t>(n), static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n >> 16),
                         static_cast<uint8_t>(n >> 24)};
  const size_t at = out.size();
  out.resize(at + 4 + element.size());
  std::memcpy(out.data() + at, le, 4);
  if (!element.empty()) std::memcpy(out.data() + at + 4, element.data(), element.size());
}

std::optional<std::vector<std::string_view>> SplitBytesElements(std::span<const std::byte> buffer) {
  std::vector<std::string_view> elements;
  size_t at = 0;
  while (at < buffer.size()) {
    if (buffer.size() - at < 4) return std::nullopt;
    const auto* p = reinterpret_cast<const uint8_t*>(buffer.data() + at);
    const size_t n = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<size_t>(p[3]) << 24);
    at += 4;
    if (n > buffer.size() - at) return std::nullopt;
    elements.emplace_back(reinterpret_cast<const char*>(buffer.data() + at), n);
    at += n;
  }
  return elements;
}

}  // namespace serving
