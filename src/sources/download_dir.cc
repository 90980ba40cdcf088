#include "sources/download_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "observability/logger.h"

namespace serving {

namespace fs = std::filesystem;

namespace {

constexpr const char* kLockFile = ".lock";

// Removes the `prefix*` directories of `cache_dir` whose lock file exists and no process holds. A directory
// without its lock file yet is being made by another process (see Open): left alone.
void RemoveAbandoned(const fs::path& cache_dir, const std::string& prefix) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(cache_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0 || !entry.is_directory(ec)) continue;
    const int fd = open((entry.path() / kLockFile).c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) continue;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
      uintmax_t bytes = 0;
      for (const auto& f : fs::recursive_directory_iterator(entry.path(), ec))
        if (f.is_regular_file(ec)) bytes += f.file_size(ec);
      fs::remove_all(entry.path(), ec);
      logging::Warn("removed the downloads of a server that is gone",
                    {{"dir", entry.path().string()}, {"bytes", static_cast<int64_t>(bytes)}});
    }
    close(fd);
  }
}

}  // namespace

StatusOr<std::unique_ptr<DownloadDir>> DownloadDir::Open(const fs::path& cache_dir, const std::string& prefix) {
  std::error_code ec;
  fs::create_directories(cache_dir, ec);
  if (ec) return Unavailable("cannot create the download directory " + cache_dir.string() + ": " + ec.message());
  RemoveAbandoned(cache_dir, prefix);
  std::string tmpl = (cache_dir / (prefix + "XXXXXX")).string();
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  if (!mkdtemp(name.data()))
    return Unavailable("cannot create a directory in " + cache_dir.string() + ": " + std::strerror(errno));
  const fs::path path(name.data());
  // Locked before it has its name, so no other process can see the lock file unlocked.
  const fs::path pending = path / ".lock.pending";
  const int fd = open(pending.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 || flock(fd, LOCK_EX) != 0 || rename(pending.c_str(), (path / kLockFile).c_str()) != 0) {
    const std::string why = std::strerror(errno);
    if (fd >= 0) close(fd);
    fs::remove_all(path, ec);
    return Unavailable("cannot lock " + path.string() + ": " + why);
  }
  return std::unique_ptr<DownloadDir>(new DownloadDir(path, fd));
}

DownloadDir::~DownloadDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
  close(lock_fd_);
}

}  // namespace serving
