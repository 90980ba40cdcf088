#include "sources/s3/s3_xml.h"

#include <gtest/gtest.h>

namespace serving::s3 {
namespace {

TEST(S3Xml, AListingPage) {
  auto page = ParseListPage(
      "<?xml version=\"1.0\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<IsTruncated>true</IsTruncated><NextContinuationToken>abc/=</NextContinuationToken>"
      "<Contents><Key>repo/m/config.pbtxt</Key><ETag>&quot;e1&quot;</ETag><Size>12</Size></Contents>"
      "<Contents><Key>repo/m/1/model.onnx</Key><ETag>\"e2\"</ETag><Size>4096</Size></Contents>"
      "<CommonPrefixes><Prefix>repo/x/</Prefix></CommonPrefixes></ListBucketResult>");
  ASSERT_TRUE(page.ok()) << page.status().message();
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[0].key, "repo/m/config.pbtxt");
  EXPECT_EQ(page->objects[0].etag, "\"e1\"");
  EXPECT_EQ(page->objects[1].size, 4096u);
  EXPECT_EQ(page->common_prefixes, std::vector<std::string>{"repo/x/"});
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_token, "abc/=");
}

TEST(S3Xml, WhatIsNotAListingIsRefused) {
  for (const char* xml :
       {"", "not xml", "<Error><Code>AccessDenied</Code></Error>",
        "<ListBucketResult><Contents><Key></Key><Size>1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>k</Key><Size>1x</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>k</Key><Size>99999999999999999999999</Size></Contents></ListBucketResult>",
        "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>"}) {
    EXPECT_EQ(ParseListPage(xml).status().code(), StatusCode::kInvalidArgument) << xml;
  }
  const std::string long_key = "<ListBucketResult><Contents><Key>" + std::string(1025, 'k') +
                               "</Key><Size>1</Size></Contents></ListBucketResult>";
  EXPECT_FALSE(ParseListPage(long_key).ok());
  std::string many = "<ListBucketResult>";
  for (int i = 0; i <= 10000; ++i) many += "<Contents><Key>k</Key><Size>1</Size></Contents>";
  EXPECT_FALSE(ParseListPage(many + "</ListBucketResult>").ok());
}

TEST(S3Xml, AnErrorDocument) {
  const ErrorReply e = ParseErrorReply(
      "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist"
      "</Message></Error>");
  EXPECT_EQ(e.code, "NoSuchBucket");
  EXPECT_EQ(e.message, "The specified bucket does not exist");
  EXPECT_TRUE(ParseErrorReply("<html>502</html>").code.empty());
  EXPECT_EQ(ParseErrorReply("<Error><Code>" + std::string(5000, 'x') + "</Code></Error>").code.size(), 200u);
}

}  // namespace
}  // namespace serving::s3
