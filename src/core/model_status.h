// The state of the models in the repository, as listings and readiness checks report it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/model_settings.h"

namespace serving {

enum class VersionState { kLoading, kReady, kUnavailable, kFailed };
const char* VersionStateName(VersionState state);

struct VersionInfo {
  int64_t version = 0;
  VersionState state = VersionState::kUnavailable;
  std::string reason;
};

struct ModelInfo {
  std::string name;
  std::shared_ptr<const ModelSettings> config;  // newest ready version's, else the parsed file; may be null
  std::vector<VersionInfo> versions;            // ascending
  std::string error;                            // config error, if any
};

}  // namespace serving
