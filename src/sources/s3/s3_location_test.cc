#include "sources/s3/s3_location.h"

#include <gtest/gtest.h>

namespace serving::s3 {
namespace {

TEST(S3Location, TritonsThreeSpellings) {
  const std::map<std::string, std::string> env = {{"AWS_REGION", "eu-west-1"}};
  auto aws = ParseLocation("s3://models/prod/repo/", env);
  ASSERT_TRUE(aws.ok()) << aws.status().message();
  EXPECT_EQ(aws->endpoint, "https://s3.eu-west-1.amazonaws.com");
  EXPECT_EQ(aws->bucket, "models");
  EXPECT_EQ(aws->prefix, "prod/repo/");
  EXPECT_FALSE(aws->path_style);
  EXPECT_EQ(aws->ObjectUrl("prod/repo/m/config.pbtxt"),
            "https://models.s3.eu-west-1.amazonaws.com/prod/repo/m/config.pbtxt");

  auto private_store = ParseLocation("s3://minio.local:9000/models", env);
  ASSERT_TRUE(private_store.ok());
  EXPECT_EQ(private_store->endpoint, "https://minio.local:9000");
  EXPECT_EQ(private_store->prefix, "");
  EXPECT_TRUE(private_store->path_style);
  EXPECT_EQ(private_store->ObjectUrl("m/1/model.onnx"), "https://minio.local:9000/models/m/1/model.onnx");

  auto scheme = ParseLocation("s3://http://127.0.0.1:9000/models/repo", env);
  ASSERT_TRUE(scheme.ok());
  EXPECT_EQ(scheme->endpoint, "http://127.0.0.1:9000");
  EXPECT_EQ(scheme->prefix, "repo/");
}

TEST(S3Location, TheEnvironmentsEndpointAndAddressing) {
  auto loc = ParseLocation("s3://models/repo", {{"AWS_ENDPOINT_URL", "http://store:8333/"}});
  ASSERT_TRUE(loc.ok());
  EXPECT_EQ(loc->endpoint, "http://store:8333");
  EXPECT_TRUE(loc->path_style);
  EXPECT_FALSE(
      ParseLocation("s3://models/repo", {{"AWS_ENDPOINT_URL", "http://store:8333"}}, Addressing::kVirtual)->path_style);
  EXPECT_TRUE(ParseLocation("s3://models/repo", {}, Addressing::kPath)->path_style);
  EXPECT_EQ(ParseLocation("s3://models", {})->endpoint, "https://s3.us-east-1.amazonaws.com");
}

TEST(S3Location, BadURLsAreRefusedNamingWhy) {
  for (const char* url : {"s3://", "s3://Bad_Bucket!", "s3://http://host:1", "s3://models/a//b", "s3://models/a/../b",
                          "s3://host:port!/models", "gs://models", "s3://ab"}) {
    auto loc = ParseLocation(url, {});
    EXPECT_EQ(loc.status().code(), StatusCode::kInvalidArgument) << url;
  }
  EXPECT_NE(ParseLocation("s3://models/a/../b", {}).status().message().find(".."), std::string::npos);
}

TEST(S3Location, CredentialsAndEncoding) {
  const Credentials c = CredentialsFrom({{"AWS_ACCESS_KEY_ID", "AK"},
                                         {"AWS_SECRET_ACCESS_KEY", "SK"},
                                         {"AWS_SESSION_TOKEN", "T"},
                                         {"AWS_DEFAULT_REGION", "ap-south-1"}});
  EXPECT_EQ(c.access_key, "AK");
  EXPECT_EQ(c.session_token, "T");
  EXPECT_EQ(c.region, "ap-south-1");
  EXPECT_EQ(CredentialsFrom({{"AWS_REGION", "a"}, {"AWS_DEFAULT_REGION", "b"}}).region, "a");
  EXPECT_EQ(UriEncode("repo/m 1/a+b~c", true), "repo/m%201/a%2Bb~c");
  EXPECT_EQ(UriEncode("repo/m", false), "repo%2Fm");
}

}  // namespace
}  // namespace serving::s3
