#include "core/tensor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

namespace serving {
namespace {

TEST(TensorTest, DataTypeNamesRoundTrip) {
  for (const char* name : {"BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "FP16",
                           "BF16", "FP32", "FP64", "BYTES"})
    EXPECT_STREQ(DataTypeName(DataTypeFromName(name)), name);
  EXPECT_EQ(DataTypeFromName("FP8"), DataType::kInvalid);
  EXPECT_EQ(DataTypeFromName("STRING"), DataType::kInvalid);
  EXPECT_EQ(DataTypeFromName("fp32"), DataType::kInvalid);
  EXPECT_EQ(ByteSize(DataType::kFp16), 2u);
  EXPECT_EQ(ByteSize(DataType::kBf16), 2u);
  EXPECT_EQ(ByteSize(DataType::kBytes), 0u);
}

TEST(TensorTest, HalfPrecisionConvertsAsIeeeAndBfloat16Do) {
  // Exact values, rounding to nearest even, the largest finite, overflow, subnormals, infinity and NaN.
  EXPECT_EQ(ToFloat16(1.0f).bits, 0x3c00);
  EXPECT_EQ(ToFloat16(-2.5f).bits, 0xc100);
  EXPECT_EQ(ToFloat16(65504.0f).bits, 0x7bff);
  EXPECT_EQ(ToFloat16(65520.0f).bits, 0x7c00);                // rounds up past the largest: infinity
  EXPECT_EQ(ToFloat16(1.0f + 1.0f / 2048).bits, 0x3c00);      // a tie rounds to even
  EXPECT_EQ(ToFloat16(1.0f + 3.0f / 2048).bits, 0x3c02);      // a tie rounds to even (up)
  EXPECT_EQ(ToFloat16(5.960464477539063e-08f).bits, 0x0001);  // the smallest subnormal
  EXPECT_EQ(ToFloat16(std::numeric_limits<float>::infinity()).bits, 0x7c00);
  EXPECT_TRUE(std::isnan(ToFloat(ToFloat16(std::nanf("")))));
  for (uint16_t bits : {0x0000, 0x0001, 0x03ff, 0x0400, 0x3555, 0x7bff, 0x8001, 0xfbff})
    EXPECT_EQ(ToFloat16(ToFloat(Float16{bits})).bits, bits) << bits;  // every half is a float
  EXPECT_EQ(ToBFloat16(1.0f).bits, 0x3f80);
  EXPECT_EQ(ToFloat(BFloat16{0x4049}), 3.140625f);
  EXPECT_EQ(ToBFloat16(3.14159265f).bits, 0x4049);
  EXPECT_TRUE(std::isnan(ToFloat(ToBFloat16(std::nanf("")))));
}

TEST(TensorTest, NumbersFitADatatypeOrAreRefused) {
  EXPECT_FALSE(FromDouble<int8_t>(128));
  EXPECT_FALSE(FromDouble<int8_t>(1.5));
  EXPECT_EQ(FromDouble<int64_t>(-9223372036854775808.0), std::numeric_limits<int64_t>::min());
  EXPECT_FALSE(FromDouble<int64_t>(9223372036854775808.0));  // 2^63 does not fit
  EXPECT_FALSE(FromDouble<uint64_t>(18446744073709551616.0));
  EXPECT_FALSE(FromDouble<Float16>(70000));
  EXPECT_EQ(FromDouble<Float16>(0.5)->bits, 0x3800);
  EXPECT_FALSE(FromDouble<BFloat16>(1e39));
  EXPECT_FALSE(FromDouble<float>(1e39));
}

TEST(TensorTest, BytesElementsRoundTripAndMalformedBuffersAreRefused) {
  std::vector<std::byte> buffer;
  AppendBytesElement(buffer, "ab");
  AppendBytesElement(buffer, "");
  AppendBytesElement(buffer, std::string_view("x\0y", 3));
  ASSERT_EQ(buffer.size(), 4u + 2 + 4 + 4 + 3);
  auto elements = SplitBytesElements(buffer);
  ASSERT_TRUE(elements);
  EXPECT_EQ(*elements, (std::vector<std::string_view>{"ab", "", std::string_view("x\0y", 3)}));
  buffer.pop_back();
  EXPECT_FALSE(SplitBytesElements(buffer));                      // the last length says 3, 2 bytes follow
  EXPECT_FALSE(SplitBytesElements(std::span(buffer).first(2)));  // half a length
}

TEST(TensorTest, ElementCountRejectsNegativeAndOverflow) {
  EXPECT_EQ(ElementCount({2, 3}), 6);
  EXPECT_EQ(ElementCount({}), 1);
  EXPECT_FALSE(ElementCount({-1, 3}));
  EXPECT_FALSE(ElementCount({std::numeric_limits<int64_t>::max(), 2}));
}

TEST(TensorTest, EncodeDoublesChecksEveryValueFitsTheType) {
  std::vector<double> ok = {1, 2, 127};
  auto bytes = EncodeDoubles(ok, DataType::kInt8, "rows");
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(static_cast<int8_t>((*bytes)[2]), 127);

  std::vector<double> too_big = {1, 128};
  auto e = EncodeDoubles(too_big, DataType::kInt8, "rows");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("rows[1]"), std::string::npos);

  std::vector<double> fraction = {1.5};
  EXPECT_FALSE(EncodeDoubles(fraction, DataType::kInt64, "rows").ok());
  std::vector<double> neg = {-1};
  EXPECT_FALSE(EncodeDoubles(neg, DataType::kUint32, "rows").ok());
  std::vector<double> two = {2};
  EXPECT_FALSE(EncodeDoubles(two, DataType::kBool, "rows").ok());
  std::vector<double> huge = {1e300};
  EXPECT_FALSE(EncodeDoubles(huge, DataType::kFp32, "rows").ok());
  std::vector<double> f = {0.25};
  auto fp = EncodeDoubles(f, DataType::kFp32, "rows");
  ASSERT_TRUE(fp.ok());
  float out;
  std::memcpy(&out, fp->data(), 4);
  EXPECT_EQ(out, 0.25f);
}

TEST(TensorTest, OwningTensorKeepsItsBytesAliveAcrossMoves) {
  Tensor t = Tensor::Owning("x", DataType::kFp64, {1}, std::vector<std::byte>(8));
  double one = 1.0;
  std::memcpy(const_cast<std::byte*>(t.data), &one, 8);
  Tensor moved = std::move(t);
  EXPECT_EQ(ElementAsDouble(moved, 0), 1.0);
}

}  // namespace
}  // namespace serving
