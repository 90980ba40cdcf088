#include "core/tensor.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>

namespace serving {
namespace {

TEST(TensorTest, DataTypeNamesRoundTrip) {
  for (const char* name :
       {"BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "FP32", "FP64"})
    EXPECT_STREQ(DataTypeName(DataTypeFromName(name)), name);
  EXPECT_EQ(DataTypeFromName("FP16"), DataType::kInvalid);
  EXPECT_EQ(DataTypeFromName("BYTES"), DataType::kInvalid);
  EXPECT_EQ(DataTypeFromName("fp32"), DataType::kInvalid);
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
