// Reading and checking DIR/<model>/config.pbtxt (format: proto/config/model_config.proto).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "config/model_config.pb.h"
#include "core/backend.h"
#include "core/status.h"

namespace serving {

// Model names: 1-128 chars of [A-Za-z0-9_.-], not starting with '.', so a name can never climb out of
// the repository or hide as a dot-file.
bool IsValidModelName(std::string_view name);

// Parses `path` (text format), fills defaults and checks it; errors name the file and the field.
StatusOr<config::ModelConfig> LoadModelConfig(const std::filesystem::path& path, const std::string& model_name);

// Checks a config against the signature a backend read from the model file, filling the config's
// inputs/outputs from the model when it declares none.
Status ReconcileSignature(const ModelSignature& signature, config::ModelConfig* config);

}  // namespace serving
