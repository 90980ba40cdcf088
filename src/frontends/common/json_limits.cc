#include "frontends/common/json_limits.h"

#include <string>

namespace serving::frontends {

Status CheckJsonBody(std::string_view json, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    // Every byte, an escaped one too (found by json_limits_fuzz: `"\<NUL>` once slipped through).
    if (c == '\0')
      return InvalidArgument("request body has a NUL byte at offset " + std::to_string(i) + "; JSON has none");
    if (in_string) {
      if (escaped) {
        escaped = false;  // the escaped character cannot end the string
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '[':
      case '{':
        if (++depth > max_depth)
          return InvalidArgument("request body nests JSON arrays/objects deeper than " + std::to_string(max_depth) +
                                 " levels (at byte " + std::to_string(i) + ")");
        break;
      case ']':
      case '}': --depth; break;
      default: break;
    }
  }
  return Status::Ok();
}

}  // namespace serving::frontends
