// An S3-compatible bucket as a RepositorySource (--model-repository s3://...; docs/model-repository.md#object-storage).
// Models are the "directories" one level under the repository's prefix; a model's own files (config.pbtxt,
// labels) are read straight from the store; a version is downloaded into a local cache directory when it is
// loaded and removed when the repository releases it.
//
// Fingerprints: a version's is a hash of its keys, ETags and sizes, so it changes when any file is replaced and
// never otherwise; a model file's is its ETag and size (HEAD). A version whose keys would leave the model's
// directory (an empty, "." or ".." segment, a NUL byte) is not served and says why in the log. A file over
// `max_file_bytes`, or a version over `max_model_bytes` in all, is refused before it is downloaded (and cut off
// if it grows while it streams in), so a hostile or mistaken upload cannot fill the disk.
//
// Downloads go to a temporary directory beside the version's, renamed into place once complete: the backend
// never sees a half-written version.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>

#include "core/repository_source.h"
#include "sources/download_dir.h"
#include "sources/s3/s3_client.h"

namespace serving {

class Metrics;

class S3Source final : public RepositorySource {
 public:
  struct Options {
    std::shared_ptr<DownloadDir> downloads;  // this source's own directory under the cache directory
    uint64_t max_file_bytes = uint64_t{4} << 30;
    uint64_t max_model_bytes = uint64_t{16} << 30;
    Metrics* metrics = nullptr;  // downloads counted and timed when set
  };
  S3Source(std::unique_ptr<s3::Client> client, Options options);

  // One listing of the repository's prefix: OK, or why the store refuses (credentials, bucket, endpoint), for a
  // clear error at startup.
  Status Check();

  std::string Describe() const override { return client_->location().url; }
  StatusOr<std::vector<std::string>> ListModels() override;
  StatusOr<std::map<int64_t, std::string>> ListVersions(const std::string& model) override;
  StatusOr<std::string> FileFingerprint(const std::string& model, const std::string& file) override;
  StatusOr<std::string> ReadFile(const std::string& model, const std::string& file, size_t max_bytes) override;
  StatusOr<std::filesystem::path> Materialize(const std::string& model, int64_t version) override;
  void Release(const std::string& model, int64_t version) override;

 private:
  // A version's files as the last listing saw them: relative path -> object.
  using VersionFiles = std::map<std::string, s3::Object>;
  // Every key under `prefix`, all pages (at most kMaxListedKeys).
  StatusOr<std::vector<s3::Object>> ListAll(const std::string& prefix);
  // Lists `prefix` page after page, handing each to `take`, which may stop the listing with an error.
  Status ForEachPage(const std::string& prefix, const std::string& delimiter,
                     const std::function<Status(s3::ListPage&)>& take);
  std::string ModelPrefix(const std::string& model) const { return client_->location().prefix + model + "/"; }

  static constexpr size_t kMaxListedKeys = 100000;
  const std::unique_ptr<s3::Client> client_;
  const Options options_;
  const std::filesystem::path dir_;                                         // options_.downloads's
  std::map<std::string, std::map<int64_t, VersionFiles>> listed_;           // model -> version -> files
  std::map<std::pair<std::string, int64_t>, std::filesystem::path> local_;  // materialised versions
};

}  // namespace serving
