#include "core/validate.h"

#include <gtest/gtest.h>

namespace serving {
namespace {

ModelSignature Sig() {
  ModelSignature s;
  s.inputs = {{"a", DataType::kFp32, {-1, 3}}, {"b", DataType::kInt64, {-1}}};
  s.outputs = {{"y", DataType::kFp32, {-1}}};
  return s;
}

Tensor T(std::string name, DataType d, Shape shape) {
  size_t n = static_cast<size_t>(*ElementCount(shape)) * ByteSize(d);
  return Tensor::Owning(std::move(name), d, std::move(shape), std::vector<std::byte>(n));
}

InferRequest Good() {
  InferRequest r;
  r.inputs.push_back(T("a", DataType::kFp32, {2, 3}));
  r.inputs.push_back(T("b", DataType::kInt64, {2}));
  return r;
}

std::string Error(InferRequest r, uint32_t max_batch = 0) {
  Status s = ValidateRequest(Sig(), max_batch, &r);
  return s.ok() ? "" : s.message();
}

TEST(ValidateTest, AcceptsAMatchingRequestAndFillsOutputs) {
  InferRequest r = Good();
  ASSERT_TRUE(ValidateRequest(Sig(), 8, &r).ok());
  EXPECT_EQ(r.requested_outputs, std::vector<std::string>{"y"});
}

TEST(ValidateTest, NamesWhatIsWrong) {
  InferRequest r = Good();
  r.inputs.pop_back();
  EXPECT_EQ(Error(r), "input 'b' is missing");

  r = Good();
  r.inputs.push_back(T("c", DataType::kFp32, {2}));
  EXPECT_EQ(Error(r), "input 'c' is not an input of the model");

  r = Good();
  r.inputs[0].dtype = DataType::kFp64;
  EXPECT_EQ(Error(r), "input 'a': datatype FP64 does not match the model's FP32");

  r = Good();
  r.inputs[0] = T("a", DataType::kFp32, {2, 4});
  EXPECT_EQ(Error(r), "input 'a': shape [2,4] does not match the model's [-1,3]");

  r = Good();
  r.inputs[1] = T("b", DataType::kInt64, {3});
  EXPECT_EQ(Error(r), "inputs disagree on the batch size (2 vs 3 in 'b')");

  r = Good();
  r.inputs[0].byte_size -= 4;
  EXPECT_EQ(Error(r), "input 'a': has 20 bytes of data, shape [2,3] of FP32 needs 24");

  EXPECT_EQ(Error(Good(), 1), "batch size 2 exceeds the model's max_batch_size 1");

  r = Good();
  r.requested_outputs = {"z"};
  EXPECT_EQ(Error(r), "requested output 'z' is not an output of the model");

  r = Good();
  r.inputs.push_back(r.inputs[0]);
  EXPECT_EQ(Error(r), "input 'a' is given more than once");
}

}  // namespace
}  // namespace serving
