// inference-server: serves the models of a repository over gRPC and REST. See README.md.
#include <cstdio>

#include "observability/logger.h"
#include "server/options.h"
#include "server/server.h"

int main(int argc, char** argv) {
  auto options = serving::ParseOptions(argc, argv);
  if (!options.ok()) {
    std::fprintf(stderr, "inference-server: %s\n\n%s", options.status().message().c_str(),
                 serving::UsageText().c_str());
    return 2;
  }
  if (options->help) {
    std::fputs(serving::UsageText().c_str(), stdout);
    return 0;
  }
  serving::logging::Level level;
  if (!serving::logging::ParseLevel(options->log_level, &level)) {
    std::fprintf(stderr, "inference-server: --log-level must be debug, info, warn or error\n");
    return 2;
  }
  serving::logging::Configure(
      level, options->log_format == "text" ? serving::logging::Format::kText : serving::logging::Format::kJson);
  return serving::RunServer(*options);
}
