#include "sources/s3/s3_xml.h"

#include <charconv>
#include <pugixml.hpp>

namespace serving::s3 {
namespace {

std::string Cut(std::string_view s, size_t n = 200) { return std::string(s.substr(0, n)); }

bool Load(pugi::xml_document& doc, std::string_view xml) {
  if (xml.size() > kMaxReplyBytes) return false;
  // parse_minimal: no DOCTYPE, PI or comment nodes; entity escapes are still decoded (no external entities).
  return doc.load_buffer(xml.data(), xml.size(), pugi::parse_minimal | pugi::parse_escapes).status == pugi::status_ok;
}

}  // namespace

StatusOr<ListPage> ParseListPage(std::string_view xml) {
  pugi::xml_document doc;
  if (!Load(doc, xml)) return InvalidArgument("the store's listing is not XML (or over 8 MiB)");
  const pugi::xml_node root = doc.child("ListBucketResult");
  if (!root) return InvalidArgument("the store's listing is not a ListBucketResult");
  ListPage page;
  size_t entries = 0;
  for (const pugi::xml_node node : root.children()) {
    if (++entries > kMaxPageEntries) return InvalidArgument("the store's listing has over 10000 entries in a page");
    const std::string_view name = node.name();
    if (name == "Contents") {
      Object o;
      o.key = node.child_value("Key");
      if (o.key.empty() || o.key.size() > kMaxKeyBytes)
        return InvalidArgument("the store's listing has a key that is empty or over 1024 bytes");
      o.etag = Cut(node.child_value("ETag"), 256);
      const std::string_view size = node.child_value("Size");
      auto [end, ec] = std::from_chars(size.data(), size.data() + size.size(), o.size);
      if (size.empty() || ec != std::errc() || end != size.data() + size.size())
        return InvalidArgument("the store's listing has a size that is not a number for key '" + Cut(o.key) + "'");
      page.objects.push_back(std::move(o));
    } else if (name == "CommonPrefixes") {
      std::string prefix = node.child_value("Prefix");
      if (prefix.empty() || prefix.size() > kMaxKeyBytes)
        return InvalidArgument("the store's listing has a common prefix that is empty or over 1024 bytes");
      page.common_prefixes.push_back(std::move(prefix));
    } else if (name == "IsTruncated") {
      page.truncated = std::string_view(node.child_value()) == "true";
    } else if (name == "NextContinuationToken") {
      page.next_token = Cut(node.child_value(), 4096);
    }
  }
  if (page.truncated && page.next_token.empty())
    return InvalidArgument("the store's listing is truncated without a continuation token");
  return page;
}

ErrorReply ParseErrorReply(std::string_view xml) {
  pugi::xml_document doc;
  if (!Load(doc, xml)) return {};
  const pugi::xml_node root = doc.child("Error");
  if (!root) return {};
  return {Cut(root.child_value("Code")), Cut(root.child_value("Message"))};
}

}  // namespace serving::s3
