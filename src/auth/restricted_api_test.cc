#include "auth/restricted_api.h"

#include <gtest/gtest.h>

namespace serving::auth {
namespace {

TEST(RestrictedApi, TritonsSyntaxGivesOneRulePerCategory) {
  RestrictedApi api;
  ASSERT_TRUE(api.Add(Transport::kHttp, "model-repository,statistics:Admin-Key=s3cret").ok());
  ASSERT_TRUE(api.Add(Transport::kGrpc, "inference:infer-key=v=1").ok());  // the value may hold '='
  const RestrictedRule* rule = api.Find(Transport::kHttp, "statistics");
  ASSERT_NE(rule, nullptr);
  EXPECT_EQ(rule->header, "admin-key");
  EXPECT_EQ(rule->value, "s3cret");
  ASSERT_NE(api.Find(Transport::kHttp, "model-repository"), nullptr);
  EXPECT_EQ(api.Find(Transport::kHttp, "inference"), nullptr);
  const RestrictedRule* grpc_rule = api.Find(Transport::kGrpc, "inference");
  ASSERT_NE(grpc_rule, nullptr);
  EXPECT_EQ(grpc_rule->header, "triton-grpc-protocol-infer-key");  // Triton's metadata prefix
  EXPECT_EQ(grpc_rule->value, "v=1");
  EXPECT_EQ(api.Find(Transport::kGrpc, "statistics"), nullptr);
}

TEST(RestrictedApi, MalformedValuesAreRefusedWithTheFlagNamed) {
  for (const char* bad : {"inference", "inference:key", "inference:=v", "inference:key=", "nope:key=v",
                          "inference,:key=v", "inference:k y=v"}) {
    RestrictedApi api;
    Status s = api.Add(Transport::kHttp, bad);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("--http-restricted-api"), std::string::npos) << s.message();
  }
}

TEST(RestrictedApi, ACategoryRestrictedTwiceIsRefused) {
  RestrictedApi api;
  ASSERT_TRUE(api.Add(Transport::kGrpc, "health:a=1").ok());
  Status s = api.Add(Transport::kGrpc, "metadata,health:b=2");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("restricted twice"), std::string::npos);
  EXPECT_TRUE(api.Add(Transport::kHttp, "health:a=1").ok());  // the other transport is separate
}

}  // namespace
}  // namespace serving::auth
