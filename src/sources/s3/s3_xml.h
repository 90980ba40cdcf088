// The S3 replies the repository reads, parsed with pugixml: a ListObjectsV2 page and an error document. Both
// come from the network and are treated as hostile: the caller bounds their size (kMaxReplyBytes) before
// parsing, pugixml resolves no external entities, and every key, count and string is checked here (fuzzed by
// `make fuzz`: s3_list_fuzz).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace serving::s3 {

// The most of a listing page or an error document that is read (a page of 1,000 keys of 1,024 bytes is ~1.3 MB).
inline constexpr size_t kMaxReplyBytes = size_t{8} << 20;
// S3 keys are at most 1,024 bytes; a page lists at most 1,000 (more is refused as not S3's).
inline constexpr size_t kMaxKeyBytes = 1024;
inline constexpr size_t kMaxPageEntries = 10000;

struct Object {
  std::string key;
  std::string etag;
  uint64_t size = 0;
};

struct ListPage {
  std::vector<Object> objects;
  std::vector<std::string> common_prefixes;  // with a delimiter
  bool truncated = false;
  std::string next_token;  // NextContinuationToken when truncated
};

// A ListObjectsV2 result; INVALID_ARGUMENT (naming what) when it is not one.
StatusOr<ListPage> ParseListPage(std::string_view xml);

// An S3 error document's Code and Message (cut to 200 bytes each); both empty when it is not one.
struct ErrorReply {
  std::string code, message;
};
ErrorReply ParseErrorReply(std::string_view xml);

}  // namespace serving::s3
