#include "sources/composite_source.h"

#include "observability/logger.h"

namespace serving {

CompositeSource::CompositeSource(std::vector<std::unique_ptr<RepositorySource>> sources)
    : sources_(std::move(sources)) {}

std::string CompositeSource::Describe() const {
  std::string out;
  for (const auto& s : sources_) out += (out.empty() ? "" : ", ") + s->Describe();
  return out;
}

StatusOr<std::vector<std::string>> CompositeSource::ListModels() {
  std::map<std::string, RepositorySource*> owner;
  std::vector<std::string> models;
  for (const auto& source : sources_) {
    SERVING_ASSIGN_OR_RETURN(const std::vector<std::string> listed, source->ListModels());
    for (const std::string& model : listed) {
      auto [it, first] = owner.emplace(model, source.get());
      if (first) {
        models.push_back(model);
      } else if (warned_.insert(model).second) {
        logging::Warn("model in several repositories: served from the first",
                      {{"model", model}, {"served_from", it->second->Describe()}, {"also_in", source->Describe()}});
      }
    }
  }
  owner_ = std::move(owner);
  return models;
}

RepositorySource* CompositeSource::Owner(const std::string& model) {
  if (owner_.find(model) == owner_.end()) (void)ListVersions(model);  // finds the owner, if any
  auto it = owner_.find(model);
  return it != owner_.end() ? it->second : nullptr;
}

StatusOr<std::map<int64_t, std::string>> CompositeSource::ListVersions(const std::string& model) {
  if (auto it = owner_.find(model); it != owner_.end()) return it->second->ListVersions(model);
  // Not listed yet (an explicit load before any poll): the first repository that has it owns it, and its
  // answer is the one returned, so finding the owner costs no second listing.
  for (const auto& source : sources_) {
    auto versions = source->ListVersions(model);
    if (versions.status().code() != StatusCode::kNotFound) {
      owner_[model] = source.get();
      return versions;
    }
  }
  return NotFound("model '" + model + "' is not in any repository");
}

StatusOr<std::string> CompositeSource::FileFingerprint(const std::string& model, const std::string& file) {
  RepositorySource* s = Owner(model);
  return s ? s->FileFingerprint(model, file) : std::string();
}

StatusOr<std::string> CompositeSource::ReadFile(const std::string& model, const std::string& file, size_t max_bytes) {
  RepositorySource* s = Owner(model);
  if (!s) return NotFound("model '" + model + "' is not in any repository");
  return s->ReadFile(model, file, max_bytes);
}

StatusOr<std::filesystem::path> CompositeSource::Materialize(const std::string& model, int64_t version) {
  RepositorySource* s = Owner(model);
  if (!s) return NotFound("model '" + model + "' is not in any repository");
  held_[model] = s;
  return s->Materialize(model, version);
}

void CompositeSource::Release(const std::string& model, int64_t version) {
  // The model may have left every listing by now: release where it was materialised.
  auto it = held_.find(model);
  if (RepositorySource* s = it != held_.end() ? it->second : Owner(model)) s->Release(model, version);
}

}  // namespace serving
