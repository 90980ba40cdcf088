// A directory of this process's own under a cache directory that servers may share (or that outlives a
// server: a Kubernetes emptyDir keeps its files when the container is restarted, and the new process may
// even get the same pid). It is locked (flock on its .lock file) for as long as it lives and removed when it is
// destroyed; one whose lock no live process holds — its server was killed before it could clean up — is
// removed when the next one is opened, so downloads never pile up across restarts.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "core/status.h"

namespace serving {

class DownloadDir {
 public:
  // Creates `cache_dir` if needed, removes abandoned `<prefix>*` directories in it, and makes a new one.
  static StatusOr<std::unique_ptr<DownloadDir>> Open(const std::filesystem::path& cache_dir, const std::string& prefix);
  ~DownloadDir();  // removes the directory and everything in it

  DownloadDir(const DownloadDir&) = delete;
  DownloadDir& operator=(const DownloadDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  DownloadDir(std::filesystem::path path, int lock_fd) : path_(std::move(path)), lock_fd_(lock_fd) {}
  std::filesystem::path path_;
  int lock_fd_;
};

}  // namespace serving
