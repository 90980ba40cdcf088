// A model's configuration as the server uses it: Triton's ModelConfig from config.pbtxt (completed from
// the model file: what GET /v2/models/{m}/config answers) and what its fields and this server's
// parameters mean, resolved once at load (core/model_config.cc; docs/model-repository.md).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "config/model_config.pb.h"

namespace serving {

struct ModelSettings {
  config::ModelConfig config;  // Triton-shaped
  std::string name;
  std::string backend;          // the registered backend's name
  int64_t max_batch_size = 0;   // > 0: the first dimension is the batch, at most this; 0: no batch dimension
  uint32_t instance_count = 1;  // parallel executions (instance_group counts summed)
  uint32_t max_queue_size = 1024;
  std::string model_filename;  // inside a version directory; empty: the backend's default
  std::map<std::string, std::vector<std::string>> output_labels;  // from each output's label_filename
  std::vector<std::string> labels;                                // the scores output's class labels
  std::vector<std::string> feature_names;                         // the input's columns, for /v1 rows given by name
  std::string scores_output;                                      // the output holding scores/probabilities
};

// What a backend or a request observer says of a config parameter (config.pbtxt `parameters`) the core does not
// read itself.
struct ParameterUse {
  enum Kind { kRead, kIgnored, kUnknown };
  Kind kind = kUnknown;
  std::string reason;  // kIgnored: why it has no effect here (logged as a warning)
};

}  // namespace serving
