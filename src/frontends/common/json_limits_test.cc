#include "frontends/common/json_limits.h"

#include <gtest/gtest.h>

#include <string>

namespace serving::frontends {
namespace {

TEST(JsonLimitsTest, AcceptsNestingUpToTheLimit) {
  EXPECT_TRUE(CheckJsonBody(R"({"rows":[{"values":[1,2]}]})", 4).ok());
  EXPECT_TRUE(CheckJsonBody("1", 0).ok());
}

TEST(JsonLimitsTest, RejectsOneLevelTooDeepAndNamesTheLimit) {
  Status s = CheckJsonBody(R"({"rows":[{"values":[[1]]}]})", 4);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("deeper than 4 levels"), std::string::npos) << s.message();
}

TEST(JsonLimitsTest, BracketsInsideStringsDoNotCount) {
  EXPECT_TRUE(CheckJsonBody(R"({"a":"[[[[{{{{\"[[["})", 1).ok());
  EXPECT_FALSE(CheckJsonBody(R"({"a":"\\",  "b":[[1]]})", 2).ok());  // an escaped backslash ends no string
}

TEST(JsonLimitsTest, AHundredThousandLevelsAreRejectedWithoutRecursion) {
  const std::string deep = std::string(100000, '[') + "1" + std::string(100000, ']');
  EXPECT_FALSE(CheckJsonBody(deep, 64).ok());
}

TEST(JsonLimitsTest, ANulByteAnywhereIsRejectedWithItsOffset) {
  Status s = CheckJsonBody(std::string("{}\0garbage", 10), 4);
  EXPECT_NE(s.message().find("NUL byte at offset 2"), std::string::npos) << s.message();
}

// Found by json_limits_fuzz: the byte after a backslash in a string was skipped unchecked.
TEST(JsonLimitsTest, AnEscapedNulByteIsRejectedToo) {
  Status s = CheckJsonBody(std::string("{\"a\": \"x\\\0\"}", 11), 4);
  EXPECT_NE(s.message().find("NUL byte at offset 9"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace serving::frontends
