// The repository source a --model-repository value names: an s3:// URL (sources/s3/s3_source.h) or a local
// directory (sources/local_source.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/repository_source.h"

namespace serving {

class Metrics;

struct SourceOptions {
  std::vector<std::string> repositories;  // --model-repository, each a directory or an s3:// URL
  std::string cache_dir;                  // "": $TMPDIR (or /tmp) + /inference-server-models
  uint64_t max_file_bytes = uint64_t{4} << 30;
  uint64_t max_model_bytes = uint64_t{16} << 30;
  std::string s3_addressing = "auto";
  std::string s3_ca_file;  // "": AWS_CA_BUNDLE, else the system's
  Metrics* metrics = nullptr;
};

// An s3:// repository is checked with one listing first: a URL, credentials or a bucket the store refuses is an
// error naming the repository, the bucket and S3's error code. Several repositories make one
// (sources/composite_source.h).
StatusOr<std::unique_ptr<RepositorySource>> OpenRepositorySource(const SourceOptions& options);

}  // namespace serving
