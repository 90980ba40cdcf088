#include "auth/token_file.h"

#include <gtest/gtest.h>

#include <string>

namespace serving::auth {
namespace {

std::string Hex(const Digest& d) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : d) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

TEST(TokenFile, RawAndDigestTokensAreFoundWithTheirScopes) {
  const std::string ops = "ops-token-0123456789abcdef";
  auto set = ParseTokens(R"({"tokens": [
    {"name": "web", "token": "web-token-0123456789", "scopes": ["infer", "metadata"]},
    {"name": "ops", "sha256": ")" +
                         Hex(Sha256(ops)) + R"(", "scopes": ["model-control"],
     "expires": "2030-01-02T03:04:05Z"}]})");
  ASSERT_TRUE(set.ok()) << set.status().message();
  ASSERT_EQ(set->size(), 2u);
  const Token* web = set->Find("web-token-0123456789");
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(web->name, "web");
  EXPECT_TRUE(web->Has(Scope::kInfer));
  EXPECT_TRUE(web->Has(Scope::kMetadata));
  EXPECT_FALSE(web->Has(Scope::kModelControl));
  EXPECT_FALSE(web->expires.has_value());
  const Token* op = set->Find(ops);
  ASSERT_NE(op, nullptr);
  EXPECT_EQ(op->name, "ops");
  ASSERT_TRUE(op->expires.has_value());
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*op->expires), 1893553445);
  EXPECT_EQ(set->Find("web-token-012345678"), nullptr);    // a prefix
  EXPECT_EQ(set->Find("web-token-0123456789x"), nullptr);  // longer
  EXPECT_EQ(set->Find(""), nullptr);
}

TEST(TokenFile, TheSha256OfAKnownStringIsRight) {
  EXPECT_EQ(Hex(Sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

struct Bad {
  const char* text;
  const char* words;
};

class TokenFileErrors : public ::testing::TestWithParam<Bad> {};

TEST_P(TokenFileErrors, NameTheProblem) {
  auto set = ParseTokens(GetParam().text);
  ASSERT_FALSE(set.ok()) << GetParam().text;
  EXPECT_EQ(set.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(set.status().message().find(GetParam().words), std::string::npos) << set.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, TokenFileErrors,
    ::testing::Values(
        Bad{"not json", "not valid JSON"}, Bad{"[]", "must be an object"}, Bad{R"({"tokens": 3})", "must be an object"},
        Bad{R"({"tokens": [{"token": "0123456789abcdefg", "scopes": ["infer"]}]})", "needs a \"name\""},
        Bad{R"({"tokens": [{"name": "a", "scopes": ["infer"]}]})", "exactly one of token and sha256"},
        Bad{R"({"tokens": [{"name": "a", "token": "short", "scopes": ["infer"]}]})", "16..4096 bytes"},
        Bad{R"({"tokens": [{"name": "a", "sha256": "abc", "scopes": ["infer"]}]})", "64 hex digits"},
        Bad{R"({"tokens": [{"name": "a", "token": "0123456789abcdefg", "scopes": []}]})", "non-empty list"},
        Bad{R"({"tokens": [{"name": "a", "token": "0123456789abcdefg", "scopes": ["admin"]}]})",
            "unknown scope 'admin'"},
        Bad{R"({"tokens": [{"name": "a", "token": "0123456789abcdefg", "scopes": ["infer"], "expires": "soon"}]})",
            "is not a UTC time"},
        // Found by tests/fuzz/auth_fuzz.cc: a year past 2262 overflowed system_clock (undefined behaviour).
        Bad{R"({"tokens": [{"name": "a", "token": "0123456789abcdefg", "scopes": ["infer"], "expires":
              "4060-01-01T00:00:00Z"}]})",
            "not between 1970 and 2160"},
        Bad{R"({"tokens": [{"name": "a", "token": "0123456789abcdefg", "scopes": ["infer"], "role": 1}]})",
            "unknown field 'role'"},
        Bad{R"({"tokens": [{"name": "a", "token": "0123456789abcdefg", "scopes": ["infer"]},
                           {"name": "a", "token": "0123456789abcdefgh", "scopes": ["infer"]}]})",
            "token 1: name 'a' is used twice"},
        Bad{R"({"tokens": [{"name": "a", "token": "0123456789abcdefg", "scopes": [[["infer"]]]}]})", "nests deeper"}));

TEST(TokenFile, ADeeplyNestedFileIsRefusedWithoutBuildingIt) {
  const std::string bomb = R"({"tokens": )" + std::string(500000, '[') + std::string(500000, ']') + "}";
  auto set = ParseTokens(bomb);
  ASSERT_FALSE(set.ok());
  EXPECT_NE(set.status().message().find("nests deeper"), std::string::npos) << set.status().message();
}

TEST(TokenFile, AFileOverTheSizeLimitIsRefused) {
  auto set = ParseTokens(std::string(kMaxTokensFileBytes + 1, ' '));
  ASSERT_FALSE(set.ok());
  EXPECT_NE(set.status().message().find("over"), std::string::npos);
}

}  // namespace
}  // namespace serving::auth
