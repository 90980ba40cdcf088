#include "core/repository_source.h"

#include <charconv>

namespace serving {

bool ParseVersionName(std::string_view name, int64_t* version) {
  if (name.empty() || name.size() > 18) return false;
  auto [ptr, ec] = std::from_chars(name.data(), name.data() + name.size(), *version);
  return ec == std::errc() && ptr == name.data() + name.size() && *version > 0;
}

bool IsPlainName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

bool IsPlainRelativePath(std::string_view path) {
  if (path.empty()) return false;
  for (size_t at = 0;;) {
    const size_t end = path.find('/', at);
    if (!IsPlainName(path.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at))) return false;
    if (end == std::string_view::npos) return true;
    at = end + 1;
  }
}

void MixFingerprint(uint64_t* hash, std::string_view s) {
  for (unsigned char c : s) *hash = (*hash ^ c) * 1099511628211ull;
  *hash = (*hash ^ 0xff) * 1099511628211ull;  // separator
}

}  // namespace serving
