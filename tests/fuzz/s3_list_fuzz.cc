// libFuzzer target: an object store's replies (a ListObjectsV2 page, an error document) as the S3 repository
// source parses them (src/sources/s3/s3_xml.h). Anything may come back from the network: no input may crash,
// leak or hang, and a page that parses holds only bounded keys.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "sources/s3/s3_xml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view xml(reinterpret_cast<const char*>(data), size);
  auto page = serving::s3::ParseListPage(xml);
  if (page.ok()) {
    if (page->objects.size() > serving::s3::kMaxPageEntries) std::abort();
    for (const auto& o : page->objects)
      if (o.key.empty() || o.key.size() > serving::s3::kMaxKeyBytes) std::abort();
    if (page->truncated && page->next_token.empty()) std::abort();
  }
  auto error = serving::s3::ParseErrorReply(xml);
  if (error.code.size() > 200 || error.message.size() > 200) std::abort();
  return 0;
}
