#include "frontends/common/v2_codec.h"

#include <gtest/gtest.h>

#include <cstring>

namespace serving::frontends {
namespace {

using Input = inference::ModelInferRequest::InferInputTensor;

inference::ModelInferRequest Request(const std::string& datatype, const std::vector<int64_t>& shape) {
  inference::ModelInferRequest r;
  r.set_model_name("m");
  r.set_id("id-1");
  Input* in = r.add_inputs();
  in->set_name("X");
  in->set_datatype(datatype);
  for (int64_t d : shape) in->add_shape(d);
  return r;
}

StatusOr<InferRequest> Decode(const inference::ModelInferRequest& in) {
  InferRequest r;
  if (Status s = DecodeV2Request(in, r); !s.ok()) return s;
  return r;
}

TEST(V2CodecTest, TypedContentsAreViewedInPlaceAndNarrowTypesCopied) {
  auto fp32 = Request("FP32", {1, 2});
  fp32.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1.5f);
  fp32.mutable_inputs(0)->mutable_contents()->add_fp32_contents(-2.0f);
  fp32.add_outputs()->set_name("Y");
  auto r = Decode(fp32);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->id, "id-1");
  EXPECT_EQ(r->model, "m");
  EXPECT_EQ(r->requested_outputs, std::vector<std::string>{"Y"});
  EXPECT_EQ(static_cast<const void*>(r->inputs[0].data), fp32.inputs(0).contents().fp32_contents().data());

  auto int8 = Request("INT8", {3});
  for (int v : {-128, 0, 127}) int8.mutable_inputs(0)->mutable_contents()->add_int_contents(v);
  auto narrowed = Decode(int8);
  ASSERT_TRUE(narrowed.ok());
  ASSERT_EQ(narrowed->inputs[0].byte_size, 3u);
  EXPECT_EQ(ElementAsDouble(narrowed->inputs[0], 0), -128);
  EXPECT_EQ(ElementAsDouble(narrowed->inputs[0], 2), 127);
}

TEST(V2CodecTest, BytesContentsBecomeTheLengthPrefixedForm) {
  auto r = Request("BYTES", {2});
  r.mutable_inputs(0)->mutable_contents()->add_bytes_contents("ab");
  r.mutable_inputs(0)->mutable_contents()->add_bytes_contents(std::string("\0", 1));
  auto d = Decode(r);
  ASSERT_TRUE(d.ok()) << d.status().message();
  auto elements = SplitBytesElements(d->inputs[0].bytes());
  ASSERT_TRUE(elements);
  EXPECT_EQ(*elements, (std::vector<std::string_view>{"ab", std::string_view("\0", 1)}));
}

TEST(V2CodecTest, MistakesGetTheSharedMessages) {
  auto err = [](const inference::ModelInferRequest& r) { return Decode(r).status().message(); };
  auto none = Request("FP32", {1});
  none.clear_inputs();
  EXPECT_EQ(err(none), "inputs is missing or empty: send at least one input");
  auto unnamed = Request("FP32", {1});
  unnamed.mutable_inputs(0)->set_name("");
  EXPECT_EQ(err(unnamed), "inputs[0] has no name");
  auto no_data = Request("FP32", {1, 2});
  EXPECT_EQ(err(no_data), "input 'X': has no data");
  auto twice = Request("FP32", {1});
  twice.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1);
  twice.add_raw_input_contents(std::string(4, '\0'));
  EXPECT_EQ(err(twice), "input 'X': has its values both in the message and as binary data; send them one way");
  auto wide = Request("INT8", {1});
  wide.mutable_inputs(0)->mutable_contents()->add_int_contents(300);
  EXPECT_EQ(err(wide), "input 'X': element 0 (300) is not a valid INT8");
  auto wrong_field = Request("FP32", {1});
  wrong_field.mutable_inputs(0)->mutable_contents()->add_fp64_contents(1);
  EXPECT_EQ(err(wrong_field), "input 'X': FP32 data must be in contents.fp32_contents only");
  auto fp16 = Request("FP16", {1});
  fp16.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1);
  EXPECT_EQ(err(fp16), "input 'X': FP16 data has no contents field in the v2 protocol; send it in raw_input_contents");
  auto unnamed_output = Request("FP32", {0});
  unnamed_output.add_outputs();
  EXPECT_EQ(err(unnamed_output), "outputs: each requested output needs a name");
}

TEST(V2CodecTest, RawContentsAreBorrowedAndCounted) {
  auto r = Request("FP32", {1});
  r.add_raw_input_contents(std::string(4, '\0'));
  auto d = Decode(r);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(static_cast<const void*>(d->inputs[0].data), r.raw_input_contents(0).data());
  r.add_raw_input_contents("extra");
  EXPECT_EQ(Decode(r).status().message(), "raw_input_contents has 2 entries for 1 inputs");
}

}  // namespace
}  // namespace serving::frontends
