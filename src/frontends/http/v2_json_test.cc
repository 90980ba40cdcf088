#include "frontends/http/v2_json.h"

#include <gtest/gtest.h>

#include <cstring>

namespace serving::frontends {
namespace {

TEST(V2JsonTest, NestedAndFlatDataFlattenAlike) {
  auto nested =
      ParseV2InferBody(R"({"inputs":[{"name":"x","shape":[2,2],"datatype":"INT32","data":[[1,2],[3,4]]}]})", {});
  auto flat = ParseV2InferBody(R"({"inputs":[{"name":"x","shape":[2,2],"datatype":"INT32","data":[1,2,3,4]}]})", {});
  ASSERT_TRUE(nested.ok() && flat.ok());
  EXPECT_EQ(0, std::memcmp(nested->request.inputs[0].data, flat->request.inputs[0].data, 16));
}

TEST(V2JsonTest, ARequestEncodedForPayloadLoggingParsesBackToTheSameTensors) {
  const std::string body =
      R"({"id":"r1","inputs":[{"name":"x","datatype":"INT64","shape":[2],"data":[9007199254740993,-1]},)"
      R"({"name":"s","datatype":"BYTES","shape":[1],"data":["hi"]}]})";
  auto parsed = ParseV2InferBody(body, {});
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(EncodeV2InferRequestJson(parsed->request), body);
}

TEST(V2JsonTest, Int64ValuesKeepFullPrecision) {
  auto r =
      ParseV2InferBody(R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[9007199254740993]}]})", {});
  ASSERT_TRUE(r.ok());
  int64_t v;
  std::memcpy(&v, r->request.inputs[0].data, 8);
  EXPECT_EQ(v, 9007199254740993LL);
}

TEST(V2JsonTest, OutOfRangeAndWrongTypesAreRejected) {
  auto e = ParseV2InferBody(R"({"inputs":[{"name":"x","shape":[1],"datatype":"UINT8","data":[256]}]})", {});
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().message(), "input 'x': element 0 (256) is not a valid UINT8");
  EXPECT_FALSE(ParseV2InferBody(R"({"inputs":[{"name":"x","shape":[1],"datatype":"BOOL","data":[1]}]})", {}).ok());
  EXPECT_FALSE(ParseV2InferBody(R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT8","data":[1.5]}]})", {}).ok());
}

TEST(V2JsonTest, BinaryInputsBorrowFromTheBodyInOrder) {
  std::string head = R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}},)"
                     R"({"name":"b","shape":[2],"datatype":"INT8","parameters":{"binary_data_size":2}}],)"
                     R"("outputs":[{"name":"y","parameters":{"binary_data":true}}]})";
  float a = 1.5f;
  std::string body = head + std::string(reinterpret_cast<char*>(&a), 4) + "\x01\x02";
  auto r = ParseV2InferBody(body, head.size());
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->request.inputs[0].data, reinterpret_cast<const std::byte*>(body.data() + head.size()));
  EXPECT_EQ(ElementAsDouble(r->request.inputs[0], 0), 1.5);
  EXPECT_EQ(ElementAsDouble(r->request.inputs[1], 1), 2);
  EXPECT_TRUE(r->binary.at("y"));
}

TEST(V2JsonTest, BinaryOutputsFollowTheJsonHeader) {
  V2HttpInfer req;
  req.binary_by_default = true;
  InferResponse resp;
  resp.model = "m";
  resp.version = 1;
  std::vector<std::byte> bytes(8);
  resp.outputs.push_back(Tensor::Owning("y", DataType::kFp32, {2}, bytes));
  auto body = EncodeV2InferResponse(resp, req);
  ASSERT_TRUE(body.header_length);
  EXPECT_EQ(body.bytes.size(), *body.header_length + 8);
  EXPECT_NE(body.bytes.find(R"("binary_data_size":8)"), std::string::npos);
}

StatusOr<V2HttpInfer> One(const std::string& input) { return ParseV2InferBody(R"({"inputs":[)" + input + "]}", {}); }

TEST(V2JsonTest, ABufferWithRoomToSpareIsParsedInPlaceWithTheSameResult) {
  std::string body = R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP64","data":[0.5,-2]}]})";
  auto copied = ParseV2InferBody(body, {});
  body.reserve(body.size() + 64);
  auto in_place = ParseV2InferBody(body, {}, body.capacity());
  ASSERT_TRUE(copied.ok() && in_place.ok());
  EXPECT_EQ(0, std::memcmp(copied->request.inputs[0].data, in_place->request.inputs[0].data, 16));
}

TEST(V2JsonTest, FieldsMayComeInAnyOrder) {
  auto r = One(R"({"data":[1,2],"shape":[2],"name":"x","datatype":"INT8"})");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(ElementAsDouble(r->request.inputs[0], 1), 2);
}

TEST(V2JsonTest, DataMustNestExactlyAsTheShapeOrBeFlat) {
  auto message = [](const std::string& input) { return One(input).status().message(); };
  EXPECT_NE(message(R"({"name":"x","shape":[2,2],"datatype":"INT32","data":[[1,2],[3]]})").find("ragged"),
            std::string::npos);
  EXPECT_NE(message(R"({"name":"x","shape":[2],"datatype":"INT32","data":[[1],[2]]})").find("deeper than the shape"),
            std::string::npos);
  EXPECT_NE(message(R"({"name":"x","shape":[2,2],"datatype":"INT32","data":[[1,2],3,4]})").find("nested but not"),
            std::string::npos);
  EXPECT_NE(message(R"({"name":"x","shape":[4],"datatype":"INT32","data":[1,2,[3,4]]})").find("mixes arrays"),
            std::string::npos);
}

TEST(V2JsonTest, Fp32ValuesBeyondItsRangeAreRejectedNotMadeInfinite) {
  EXPECT_FALSE(One(R"({"name":"x","shape":[1],"datatype":"FP32","data":[1e39]})").ok());
  EXPECT_TRUE(One(R"({"name":"x","shape":[1],"datatype":"FP64","data":[1e39]})").ok());
}

TEST(V2JsonTest, NothingMayFollowTheJsonObject) {
  const std::string good = R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]})";
  ASSERT_TRUE(ParseV2InferBody(good, {}).ok());
  EXPECT_FALSE(ParseV2InferBody(good + std::string("\0garbage", 8), {}).ok());
  EXPECT_FALSE(ParseV2InferBody(good + "{}", {}).ok());
  EXPECT_TRUE(ParseV2InferBody(good + " \n", {}).ok());
}

TEST(V2JsonTest, DataAndBinaryDataSizeTogetherAreRejected) {
  std::string head =
      R"({"inputs":[{"name":"a","shape":[1],"datatype":"INT8","data":[1],"parameters":{"binary_data_size":1}}]})";
  auto r = ParseV2InferBody(head + "\x01", head.size());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("both in the message and as binary data"), std::string::npos);
}

TEST(V2JsonTest, DeepNestingIsRejectedBeforeParsing) {
  const int d = 100000;
  auto r = One(R"({"name":"x","shape":[1],"datatype":"FP32","data":)" + std::string(d, '[') + "1" +
               std::string(d, ']') + "}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("deeper than 32 levels"), std::string::npos) << r.status().message();
}

TEST(V2JsonTest, EchoedValuesAreCut) {
  auto r = One(R"({"name":"x","shape":[1],"datatype":"FP32","data":[")" + std::string(100000, 'a') + R"("]})");
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.status().message().size(), 300u) << r.status().message();
}

}  // namespace
}  // namespace serving::frontends
