#include "core/status.h"

#include <gtest/gtest.h>

namespace serving {
namespace {

TEST(StatusTest, HttpMappingFollowsEnvoysTranscoderTable) {
  const std::pair<StatusCode, int> table[] = {
      {StatusCode::kOk, 200},
      {StatusCode::kInvalidArgument, 400},
      {StatusCode::kFailedPrecondition, 400},
      {StatusCode::kOutOfRange, 400},
      {StatusCode::kUnauthenticated, 401},
      {StatusCode::kPermissionDenied, 403},
      {StatusCode::kNotFound, 404},
      {StatusCode::kAlreadyExists, 409},
      {StatusCode::kAborted, 409},
      {StatusCode::kResourceExhausted, 429},
      {StatusCode::kCancelled, 499},
      {StatusCode::kUnimplemented, 501},
      {StatusCode::kUnavailable, 503},
      {StatusCode::kDeadlineExceeded, 504},
      {StatusCode::kUnknown, 500},
      {StatusCode::kInternal, 500},
      {StatusCode::kDataLoss, 500},
  };
  for (auto [code, http] : table) EXPECT_EQ(HttpStatusFor(code), http) << StatusCodeName(code);
}

TEST(StatusTest, ToStringNamesTheCode) {
  EXPECT_EQ(InvalidArgument("rows is empty").ToString(), "INVALID_ARGUMENT: rows is empty");
  EXPECT_EQ(Status::Ok().ToString(), "OK");
}

TEST(StatusTest, StatusOrCarriesValueOrStatus) {
  StatusOr<int> v = 3;
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 3);
  StatusOr<int> e = NotFound("x");
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
}

TEST(StatusTest, LongMessagesAreCutSoClientInputIsNeverEchoedWhole) {
  const std::string huge(10 << 20, 'x');
  Status s = InvalidArgument("input " + huge + " is bad");
  EXPECT_LE(s.message().size(), kMaxStatusMessageBytes);
  EXPECT_NE(s.message().find("message cut from 10485773 bytes"), std::string::npos) << s.message();
}

TEST(StatusTest, QuoteCutsOnACharacterBoundaryAndSaysHowLongTheInputWas) {
  EXPECT_EQ(Quote("abc"), "'abc'");
  EXPECT_EQ(Quote(std::string(200, 'a'), 4), "'aaaa...(200 bytes)'");
  // "é" is two bytes: a cut after 3 bytes would split the second one.
  EXPECT_EQ(Quote("\xc3\xa9\xc3\xa9", 3), "'\xc3\xa9...(4 bytes)'");
}

// Found by http_fuzz: a path byte 0xB2 went into a google.rpc.Status message, which protobuf refuses to
// serialise as it is (a plain-text error line on stderr for each request).
TEST(StatusTest, QuoteReplacesBytesThatAreNotUtf8) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(Quote("/v\xb2/m"), "'/v" + fffd + "/m'");
  EXPECT_EQ(Quote("\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "'\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80'");  // é € 😀 kept
  EXPECT_EQ(Quote("\xc3"), "'" + fffd + "'");                                                              // cut short
  EXPECT_EQ(Quote("\xc0\xaf"), "'" + fffd + fffd + "'");                        // overlong '/'
  EXPECT_EQ(Quote("\xed\xa0\x80"), "'" + fffd + fffd + fffd + "'");             // a UTF-16 surrogate
  EXPECT_EQ(Quote("\xf4\x90\x80\x80"), "'" + fffd + fffd + fffd + fffd + "'");  // past U+10FFFF
}

}  // namespace
}  // namespace serving
