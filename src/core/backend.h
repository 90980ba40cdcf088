// The seam between the scheduler and the engines that run models. A Backend turns a model version's
// files into a Model; a Model executes one batch. Backends know nothing of protocols, queues or metrics.
// A backend registers itself with a BackendRegistry in one small file (see backends/*/register.cc).
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/model_settings.h"
#include "core/model_signature.h"
#include "core/status.h"
#include "core/tensor.h"

namespace serving {

// One loaded model version. Execute() is called concurrently from the scheduler's instance threads
// and must be thread-safe. Inputs are validated against signature() before Execute() sees them.
class Model {
 public:
  virtual ~Model() = default;
  virtual const ModelSignature& signature() const = 0;
  // Runs the model; `outputs` names the outputs wanted (never empty). Fills one tensor per name, in order.
  virtual Status Execute(std::span<const Tensor> inputs, std::span<const std::string> outputs,
                         std::vector<Tensor>* results) = 0;
};

// A backend owns its part of the configuration: the platform names it serves, its parameters and their
// values. The core (core/model_config.cc) knows no backend's names or parameters.
class Backend {
 public:
  virtual ~Backend() = default;
  // Triton `platform` names this backend serves (e.g. "onnxruntime_onnx"): a config naming one gets this
  // backend, and a config naming the backend gets the first as its platform. Empty: none.
  virtual std::vector<std::string> platforms() const { return {}; }
  // A parameter the core does not read: whether this backend reads it (an error when its value cannot be
  // used refuses the config; the message names the parameter), ignores it knowingly, or does not know it.
  // Called when a config is read, before any model file is.
  virtual StatusOr<ParameterUse> CheckParameter(const std::string& key, const std::string& value) const {
    return ParameterUse{};
  }
  // Loads `model_file` (inside a version directory) under `config`. Catches its engine's exceptions.
  virtual StatusOr<std::unique_ptr<Model>> Load(const ModelSettings& config,
                                                const std::filesystem::path& model_file) = 0;
  // The model file's default name inside `version_dir` for `config`, e.g. "model.onnx" (a config's
  // default_model_filename overrides it). A backend taking several formats may look at what the directory holds.
  virtual std::string model_filename(const ModelSettings& config, const std::filesystem::path& version_dir) const = 0;
};

// A config parameter's string value; "" when the config does not set it.
std::string ConfigParameter(const ModelSettings& config, const std::string& key);

// Backends by config name ("onnxruntime"). Filled once at startup, read-only afterwards.
class BackendRegistry {
 public:
  void Register(const std::string& name, std::unique_ptr<Backend> backend);
  // The backend a config naming neither platform nor backend gets.
  void SetDefault(const std::string& name) { default_ = name; }
  const std::string& default_name() const { return default_; }
  // nullptr when no backend has that name.
  Backend* Find(const std::string& name) const;
  // The name of the backend serving `platform`; "" when none does.
  std::string ForPlatform(const std::string& platform) const;
  std::vector<std::string> Names() const;
  std::vector<std::string> Platforms() const;

 private:
  std::map<std::string, std::unique_ptr<Backend>> backends_;
  std::string default_;
};

}  // namespace serving
