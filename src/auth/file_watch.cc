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
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, interval_, [this] { return stop_; })) {
      lock.unlock();
      if (auto now = Identities(); now != seen_) {
        seen_ = std::move(now);
        on_change_();
      }
      lock.lock();
    }
  });
}

FileWatcher::~FileWatcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::vector<FileIdentity> FileWatcher::Identities() const {
  std::vector<FileIdentity> out;
  out.reserve(paths_.size());
  for (const auto& path : paths_) out.push_back(IdentityOf(path));
  return out;
}

}  // namespace serving::auth
