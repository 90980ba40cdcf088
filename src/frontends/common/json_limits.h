// Limits on JSON request bodies that hold before any parser builds anything from them. A JSON parser
// that keeps a frame per nesting level (protobuf's JSON mapping, a DOM) turns a few megabytes of `[[[[`
// into gigabytes or a stack overflow; this scan is iterative and allocates nothing, so it can run first.
#pragma once

#include <string_view>

#include "core/status.h"

namespace serving::frontends {

// Fails with INVALID_ARGUMENT naming `max_depth` when objects/arrays in `json` nest deeper than it (the
// top-level value is depth 1), or naming the offset of a NUL byte (JSON has none; parsers that stop at
// one would accept `{...}\0garbage`). Strings are skipped, escapes included; nothing else is validated.
Status CheckJsonBody(std::string_view json, int max_depth);

}  // namespace serving::frontends
