#include "auth/file_watch.h"

#include <sys/stat.h>

namespace serving::auth {

FileIdentity IdentityOf(const std::string& path) {
  struct stat st {};
  if (path.empty() || stat(path.c_str(), &st) != 0) return {};
  return {st.st_dev, st.st_ino, st.st_size, int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec};
}

FileWatcher::FileWatcher(std::vector<std::string> paths, std::chrono::milliseconds interval,
                         std::function<void()> on_change)
    : paths_(std::move(paths)), interval_(interval), on_change_(std::move(on_change)), seen_(Identities()) {
  thread_ = std::thread([this] {
    MutexLock lock(mu_);
    while (!cv_.WaitFor(mu_, interval_, [this]() REQUIRES(mu_) { return stop_; })) {
      lock.Unlock();
      if (auto now = Identities(); now != seen_) {
        seen_ = std::move(now);
        on_change_();
      }
      lock.Lock();
    }
  });
}

FileWatcher::~FileWatcher() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.NotifyAll();
  thread_.join();
}

std::vector<FileIdentity> FileWatcher::Identities() const {
  std::vector<FileIdentity> out;
  out.reserve(paths_.size());
  for (const auto& path : paths_) out.push_back(IdentityOf(path));
  return out;
}

}  // namespace serving::auth
