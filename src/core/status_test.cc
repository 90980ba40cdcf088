#include "core/status.h"

#include <gtest/gtest.h>

namespace serving {
namespace {

TEST(StatusTest, HttpMappingFollowsEnvoysTranscoderTable) {
  const std::pair<StatusCode, int> table[] = {
      {StatusCode::kOk, 200},
      {StatusCode::kInvalidArgument, 400},   {StatusCode::kFailedPrecondition, 400},
      {StatusCode::kOutOfRange, 400},        {StatusCode::kUnauthenticated, 401},
      {StatusCode::kPermissionDenied, 403},  {StatusCode::kNotFound, 404},
      {StatusCode::kAlreadyExists, 409},     {StatusCode::kAborted, 409},
      {StatusCode::kResourceExhausted, 429}, {StatusCode::kCancelled, 499},
      {StatusCode::kUnimplemented, 501},     {StatusCode::kUnavailable, 503},
      {StatusCode::kDeadlineExceeded, 504},  {StatusCode::kUnknown, 500},
      {StatusCode::kInternal, 500},          {StatusCode::kDataLoss, 500},
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

}  // namespace
}  // namespace serving
