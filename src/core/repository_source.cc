#include "core/repository_source.h"

#include <charconv>

namespace serving {

bool ParseVersionName(std::string_view name, int64_t* version) {
  if (name.empty() || name.size() > 18) return false;
  auto [ptr, ec] = std::from_chars(name.data(), name.data() + name.size(), *version);
  return ec == std::errc() && ptr == name.data() + name.size() && *version > 0;
}

}  // namespace serving
