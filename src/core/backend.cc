#include "core/backend.h"

namespace serving {

void BackendRegistry::Register(const std::string& name, std::unique_ptr<Backend> backend) {
  backends_[name] = std::move(backend);
}

Backend* BackendRegistry::Find(const std::string& name) const {
  auto it = backends_.find(name);
  return it == backends_.end() ? nullptr : it->second.get();
}

std::vector<std::string> BackendRegistry::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, _] : backends_) names.push_back(name);
  return names;
}

}  // namespace serving
