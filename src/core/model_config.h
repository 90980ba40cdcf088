// Reading and checking DIR/<model>/config.pbtxt: Triton's ModelConfig schema (proto/config/model_config.proto),
// resolved into ModelSettings. docs/model-repository.md lists the fields and parameters read here, the Triton
// fields ignored with a warning and those refused.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "core/backend.h"
#include "core/model_settings.h"
#include "core/status.h"

namespace serving {

// Model names: 1-128 chars of [A-Za-z0-9_.-], not starting with '.', so a name can never climb out of
// the repository or hide as a dot-file.
bool IsValidModelName(std::string_view name);

// Parses `path` (text format), fills defaults, checks it and reads the files it names (label_filename);
// errors name the file and the field. Fields that are ignored are logged as warnings.
StatusOr<ModelSettings> LoadModelConfig(const std::filesystem::path& path, const std::string& model_name);

// Checks a config against the signature a backend read from the model file and completes it: inputs and
// outputs the config does not declare are added from the model (dims without the batch dimension when
// max_batch_size > 0), and the scores output is chosen.
Status ReconcileSignature(const ModelSignature& signature, ModelSettings* settings);

// Triton's datatype names (TYPE_FP32, TYPE_STRING for BYTES) and ours.
DataType FromConfigDataType(config::DataType type);
config::DataType ToConfigDataType(DataType type);

}  // namespace serving
