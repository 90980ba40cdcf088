// The process: wires repository, backends, core and frontends together, serves until SIGTERM/SIGINT,
// then drains: readiness turns false, (after --shutdown-delay-s) listeners close, in-flight requests
// get --grace-period-s to finish, and the process exits 0.
#pragma once

#include "server/options.h"

namespace serving {

// Blocks until a termination signal and the drain that follows; returns the exit code.
int RunServer(const ServerOptions& options);

}  // namespace serving
