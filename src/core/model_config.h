// Reading and checking DIR/<model>/config.pbtxt: Triton's ModelConfig schema (proto/config/model_config.proto),
// resolved into ModelSettings. docs/model-repository.md lists the fields and parameters read here, the Triton
// fields ignored with a warning and those refused.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "core/backend.h"
#include "core/model_settings.h"
#include "core/status.h"

namespace serving {

// Model names: 1-128 chars of [A-Za-z0-9_.-], not starting with '.', so a name can never climb out of
// the repository or hide as a dot-file.
bool IsValidModelName(std::string_view name);

// Reads a file of the model's own directory (label_filename): its content, or why not (NOT_FOUND; past
// `max_bytes`: INVALID_ARGUMENT). Called synchronously, on the thread parsing the config (the repository's, under its
// operation lock).
using ModelFileReader = std::function<StatusOr<std::string>(const std::string& file, size_t max_bytes)>;

// The most a config.pbtxt may hold.
inline constexpr size_t kMaxConfigBytes = size_t{16} << 20;

// Parses a config.pbtxt's `text` (Triton's text format), fills defaults, checks it and reads the files it
// names (label_filename) through `read_file`; errors start with `file_name` and name the field. The backend
// the config names (or the platform's, or the registry's default) checks its own parameters. Fields that
// are ignored are logged as warnings.
// `observers` judges the parameters the server's request observers read (RequestObservers::CheckParameter);
// null: none.
using ParameterCheck = std::function<StatusOr<ParameterUse>(const std::string& key, const std::string& value)>;
StatusOr<ModelSettings> ParseModelConfig(const std::string& text, const std::string& file_name,
                                         const std::string& model_name, const ModelFileReader& read_file,
                                         const BackendRegistry& backends, const ParameterCheck& observers = nullptr);

// Checks a config against the signature a backend read from the model file and completes it: inputs and
// outputs the config does not declare are added from the model (dims without the batch dimension when
// max_batch_size > 0), and the scores output is chosen.
Status ReconcileSignature(const ModelSignature& signature, ModelSettings* settings);

// Triton's datatype names (TYPE_FP32, TYPE_STRING for BYTES) and ours.
DataType FromConfigDataType(config::DataType type);
config::DataType ToConfigDataType(DataType type);

}  // namespace serving
