// The local directory as a RepositorySource: models are its subdirectories, read in place (Materialize
// returns the version's own directory; nothing is copied). Symlinks are followed, but an entry whose target
// lies outside the repository is not served: a model directory that escapes is not listed, nor is a version
// with a file that does.
#pragma once

#include <filesystem>

#include "core/repository_source.h"

namespace serving {

class LocalDirectorySource final : public RepositorySource {
 public:
  explicit LocalDirectorySource(std::filesystem::path root);

  std::string Describe() const override { return root_.string(); }
  StatusOr<std::vector<std::string>> ListModels() override;
  StatusOr<std::map<int64_t, std::string>> ListVersions(const std::string& model) override;
  StatusOr<std::string> FileFingerprint(const std::string& model, const std::string& file) override;
  StatusOr<std::string> ReadFile(const std::string& model, const std::string& file, size_t max_bytes) override;
  StatusOr<std::filesystem::path> Materialize(const std::string& model, int64_t version) override;
  void Release(const std::string&, int64_t) override {}

 private:
  // Whether `p`, symlinks followed, is inside the repository.
  bool Inside(const std::filesystem::path& p) const;
  // The model's directory, or NOT_FOUND (no such directory, a name with a path in it, or one that escapes).
  StatusOr<std::filesystem::path> ModelDir(const std::string& model) const;

  const std::filesystem::path root_;
  std::filesystem::path canonical_root_;
};

}  // namespace serving
