#include "frontends/common/v1_codec.h"

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

namespace serving::frontends {
namespace {

// A model as the core shows it to a decode step: no repository, no version, no scheduler.
struct FakeModelView {
  std::shared_ptr<ModelSettings> config = std::make_shared<ModelSettings>();
  ModelSignature signature{{{"X", DataType::kFp32, {-1, 2}}}, {{"Y", DataType::kFp32, {-1, 2}}}, {}};
  FakeModelView() {
    config->name = "m";
    config->feature_names = {"a", "b"};
    config->labels = {"no", "yes"};
    config->scores_output = "Y";
  }
  ModelView view() const { return {*config, 3, signature}; }
};

StatusOr<InferRequest> Decode(const inference::v1::InferRequest& in, const FakeModelView& model) {
  InferRequest r;
  if (Status s = DecodeV1Rows(in, model.view(), r); !s.ok()) return s;
  return r;
}

inference::v1::InferRequest Parse(const std::string& text) {
  inference::v1::InferRequest r;
  google::protobuf::util::JsonStringToMessage(text, &r);
  return r;
}

TEST(V1CodecTest, ValuesAndNamedFeaturesBuildTheSameTensor) {
  FakeModelView v;
  auto a = Decode(Parse(R"({"rows":[{"values":[1,2]},{"features":{"b":4,"a":3}}]})"), v);
  ASSERT_TRUE(a.ok()) << a.status().message();
  const Tensor& t = a->inputs[0];
  EXPECT_EQ(t.shape, (Shape{2, 2}));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(ElementAsDouble(t, i), i + 1);
}

TEST(V1CodecTest, RowErrorsNameTheRowAndFeature) {
  FakeModelView v;
  auto err = [&](const std::string& json) { return Decode(Parse(json), v).status().message(); };
  EXPECT_EQ(err(R"({"rows":[]})"), "rows is empty: send at least one row");
  EXPECT_EQ(err(R"({"rows":[{"values":[1,2]},{"values":[1]}]})"), "rows[1].values has 1 values, model 'm' expects 2");
  EXPECT_EQ(err(R"({"rows":[{"features":{"a":1}}]})"), "rows[0].features: missing feature 'b'");
  EXPECT_EQ(err(R"({"rows":[{"features":{"a":1,"c":2}}]})"), "rows[0].features: unknown feature 'c'");
}

TEST(V1CodecTest, EncodesScoresLabelsAndOutputsPerRow) {
  InferResponse r;
  r.model = "m";
  r.version = 3;
  r.id = "id";
  r.config = FakeModelView().config;
  std::vector<float> y = {0.2f, 0.8f, 0.9f, 0.1f};
  std::vector<std::byte> bytes(16);
  std::memcpy(bytes.data(), y.data(), 16);
  r.outputs.push_back(Tensor::Owning("Y", DataType::kFp32, {2, 2}, std::move(bytes)));
  inference::v1::InferResponse out;
  EncodeV1Response(r, &out);
  ASSERT_EQ(out.predictions_size(), 2);
  EXPECT_EQ(out.predictions(0).label(), "yes");
  EXPECT_EQ(out.predictions(1).label(), "no");
  EXPECT_FLOAT_EQ(out.predictions(1).scores(0), 0.9f);
  EXPECT_EQ(out.predictions(0).outputs().at("Y").values_size(), 2);
  EXPECT_EQ(out.version(), "3");
}

}  // namespace
}  // namespace serving::frontends
