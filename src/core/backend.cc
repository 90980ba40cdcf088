#include "core/backend.h"

namespace serving {

void BackendRegistry::Register(const std::string& name, std::unique_ptr<Backend> backend) {
  backends_[name] = std::move(backend);
}

Backend* BackendRegistry::Find(const std::string& name) const {
  auto it = backends_.find(name);
  return it == backends_.end() ? nullptr : it->second.get();
}

std::string ConfigParameter(const ModelSettings& config, const std::string& key) {
  auto it = config.config.parameters().find(key);
  return it == config.config.parameters().end() ? "" : it->second.string_value();
}

std::string BackendRegistry::ForPlatform(const std::string& platform) const {
  for (const auto& [name, backend] : backends_)
    for (const auto& p : backend->platforms())
      if (p == platform) return name;
  return "";
}

std::vector<std::string> BackendRegistry::Platforms() const {
  std::vector<std::string> platforms;
  for (const auto& [name, backend] : backends_)
    for (const auto& p : backend->platforms()) platforms.push_back(p);
  return platforms;
}

std::vector<std::string> BackendRegistry::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, _] : backends_) names.push_back(name);
  return names;
}

}  // namespace serving
