#include "core/batch.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace serving {
namespace {

InferRequest Request(std::vector<Tensor> inputs) {
  InferRequest r;
  r.inputs = std::move(inputs);
  return r;
}

Tensor Floats(const std::string& name, Shape shape, std::vector<float> values) {
  std::vector<std::byte> bytes(values.size() * sizeof(float));
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return Tensor::Owning(name, DataType::kFp32, std::move(shape), std::move(bytes));
}

Tensor Strings(const std::string& name, Shape shape, const std::vector<std::string>& values) {
  std::vector<std::byte> bytes;
  for (const auto& v : values) AppendBytesElement(bytes, v);
  return Tensor::Owning(name, DataType::kBytes, std::move(shape), std::move(bytes));
}

std::vector<std::string> StringsOf(const Tensor& t) {
  std::vector<std::string> out;
  const auto elements = SplitBytesElements(t.bytes());
  for (auto v : elements.value()) out.emplace_back(v);
  return out;
}

TEST(BatchTest, RequestsStackWhenEveryInputAgreesAfterTheFirstDimension) {
  const auto a = Request({Floats("x", {1, 2}, {1, 2}), Strings("s", {1}, {"a"})});
  const auto b = Request({Strings("s", {2}, {"b", "c"}), Floats("x", {2, 2}, {3, 4, 5, 6})});  // order differs
  const auto c = Request({Floats("x", {1, 3}, {1, 2, 3}), Strings("s", {1}, {"a"})});
  const auto d = Request({Floats("x", {1, 2}, {1, 2})});
  const auto scalar = Request({Floats("x", {}, {1}), Strings("s", {1}, {"a"})});
  EXPECT_TRUE(Stackable(a, b));
  EXPECT_FALSE(Stackable(a, c)) << "[1,3] and [1,2] differ after the batch dimension";
  EXPECT_FALSE(Stackable(a, d)) << "different inputs";
  EXPECT_FALSE(Stackable(scalar, scalar)) << "no batch dimension to stack along";
  EXPECT_EQ(RequestRows(b), 2);
  EXPECT_EQ(RequestRows(scalar), 1);
}

TEST(BatchTest, StackingConcatenatesRowsInRequestOrderAndSlicingGivesThemBack) {
  const auto a = Request({Floats("x", {1, 2}, {1, 2}), Strings("s", {1}, {"a"})});
  const auto b = Request({Strings("s", {2}, {"bb", ""}), Floats("x", {2, 2}, {3, 4, 5, 6})});
  const InferRequest* both[] = {&a, &b};
  const auto stacked = StackInputs(both);
  ASSERT_EQ(stacked.size(), 2u);
  EXPECT_EQ(stacked[0].name, "x");
  EXPECT_EQ(stacked[0].shape, (Shape{3, 2}));
  const auto* x = reinterpret_cast<const float*>(stacked[0].data);
  EXPECT_EQ(std::vector<float>(x, x + 6), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(stacked[1].shape, (Shape{3}));
  EXPECT_EQ(StringsOf(stacked[1]), (std::vector<std::string>{"a", "bb", ""}));

  auto rows = SliceRows(stacked[0], 1, 2);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(rows->shape, (Shape{2, 2}));
  EXPECT_EQ(rows->data, stacked[0].data + 2 * sizeof(float)) << "a view, not a copy";
  EXPECT_EQ(rows->owner, stacked[0].owner);
  x = reinterpret_cast<const float*>(rows->data);
  EXPECT_EQ(std::vector<float>(x, x + 4), (std::vector<float>{3, 4, 5, 6}));
  auto strings = SliceRows(stacked[1], 1, 2);
  ASSERT_TRUE(strings.ok());
  EXPECT_EQ(StringsOf(*strings), (std::vector<std::string>{"bb", ""}));
  strings = SliceRows(stacked[1], 0, 1);
  ASSERT_TRUE(strings.ok());
  EXPECT_EQ(StringsOf(*strings), (std::vector<std::string>{"a"}));
}

TEST(BatchTest, AnOutputWithoutTheBatchRowsCannotBeSliced) {
  const Tensor summary = Floats("y", {1}, {7});
  auto s = SliceRows(summary, 1, 2);
  EXPECT_EQ(s.status().code(), StatusCode::kInternal);
  EXPECT_NE(s.status().message().find("cannot be batched"), std::string::npos) << s.status().ToString();
  EXPECT_FALSE(SliceRows(Floats("y", {}, {7}), 0, 1).ok());
}

TEST(BatchTest, ASliceOfABorrowedTensorOwnsACopy) {
  const float values[] = {1, 2, 3, 4};
  const Tensor borrowed = Tensor::Borrowed("y", DataType::kFp32, {4}, values, sizeof(values));
  auto s = SliceRows(borrowed, 2, 2);
  ASSERT_TRUE(s.ok());
  EXPECT_NE(s->owner, nullptr);
  const auto* y = reinterpret_cast<const float*>(s->data);
  EXPECT_EQ(y[0], 3);
  EXPECT_EQ(y[1], 4);
}

}  // namespace
}  // namespace serving
