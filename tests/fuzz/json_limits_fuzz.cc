// libFuzzer target: the JSON nesting and NUL scan every REST body passes before a parser sees it
// (frontends/common/json_limits.h), against a plain reference of what it promises. Whatever the bytes: an
// accepted body holds no NUL byte, and, when its brackets balance as valid JSON's do, nests no deeper than
// the limit (the parsers after it recurse once per level).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "frontends/common/json_limits.h"

namespace {

constexpr int kMaxDepth = 8;

struct Reference {
  bool nul = false;
  bool unbalanced = false;  // a close before its open: not JSON, a parser stops there
  int deepest = 0;
};

// Depth of brackets outside strings (a backslash escapes the next character in a string).
Reference Measure(std::string_view s) {
  Reference r;
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : s) {
    if (c == '\0') r.nul = true;
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') in_string = true;
    if (c == '[' || c == '{') depth += 1;
    if (c == ']' || c == '}') {
      if (--depth < 0) r.unbalanced = true;
    }
    if (!r.unbalanced && depth > r.deepest) r.deepest = depth;
  }
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  if (!serving::frontends::CheckJsonBody(body, kMaxDepth).ok()) return 0;
  const Reference r = Measure(body);
  if (r.nul) std::abort();                                   // a NUL byte let through
  if (!r.unbalanced && r.deepest > kMaxDepth) std::abort();  // nesting past the limit let through
  return 0;
}
