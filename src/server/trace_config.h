// Tracing's flags: Triton's --trace-config settings applied onto ours, and all of them checked.
#pragma once

#include "core/status.h"
#include "server/options.h"

namespace serving {

// Applies each of `o.trace_config` (Triton's spellings, where they map: docs/metrics.md#tracing) onto
// the --trace-* options, then checks them all; INVALID_ARGUMENT names the setting that is wrong.
Status ApplyTraceConfig(ServerOptions& o);

}  // namespace serving
