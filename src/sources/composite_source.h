// Several repositories as one (Triton's repeated --model-repository, local and s3:// mixed). Each model belongs
// to the first repository, in the order given, that lists it; a model listed by a later one too is served from
// the first, with a warning naming both. A listing that fails in any repository fails the whole listing, so no
// model of an unreachable repository is taken for gone.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <vector>

#include "core/repository_source.h"

namespace serving {

class CompositeSource final : public RepositorySource {
 public:
  explicit CompositeSource(std::vector<std::unique_ptr<RepositorySource>> sources);

  std::string Describe() const override;
  StatusOr<std::vector<std::string>> ListModels() override;
  StatusOr<std::map<int64_t, std::string>> ListVersions(const std::string& model) override;
  StatusOr<std::string> FileFingerprint(const std::string& model, const std::string& file) override;
  StatusOr<std::string> ReadFile(const std::string& model, const std::string& file, size_t max_bytes) override;
  StatusOr<std::filesystem::path> Materialize(const std::string& model, int64_t version) override;
  void Release(const std::string& model, int64_t version) override;

 private:
  // The repository that holds `model`: from the last listing, else the first that knows it (an explicit load
  // may come before any listing); null when none does.
  RepositorySource* Owner(const std::string& model);

  const std::vector<std::unique_ptr<RepositorySource>> sources_;
  std::map<std::string, RepositorySource*> owner_;
  std::map<std::string, RepositorySource*> held_;  // where each model's versions were materialised, for Release
  std::set<std::string> warned_;                   // models already reported as listed twice
};

}  // namespace serving
