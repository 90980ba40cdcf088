// FileWatcher: calls back, on its own thread, when any of a few files changes, for the secrets the server re-reads
// without a restart (the tokens file, TLS certificates and keys). A change is a new identity (device, inode, size,
// modification time, following symlinks): a Kubernetes Secret update, which swaps a symlink, and a rename over the
// file both make one.
//
// Threading: `on_change` runs on the watcher's thread, never concurrently with itself; the destructor stops the
// thread and waits for a callback in progress.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include "core/mutex.h"

namespace serving::auth {

struct FileIdentity {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = -1;
  int64_t mtime_ns = 0;
  bool operator==(const FileIdentity&) const = default;
};
// A missing file (or an empty path) has the default identity.
FileIdentity IdentityOf(const std::string& path);

class FileWatcher {
 public:
  // Checks `paths` every `interval` against their identities now, and calls `on_change` after any changed,
  // on the watcher's own thread (one per FileWatcher; never two calls at once).
  FileWatcher(std::vector<std::string> paths, std::chrono::milliseconds interval, std::function<void()> on_change);
  ~FileWatcher();
  FileWatcher(const FileWatcher&) = delete;
  FileWatcher& operator=(const FileWatcher&) = delete;

 private:
  std::vector<FileIdentity> Identities() const;

  const std::vector<std::string> paths_;
  const std::chrono::milliseconds interval_;
  const std::function<void()> on_change_;
  std::vector<FileIdentity> seen_;  // the watcher thread's only
  Mutex mu_;
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace serving::auth
