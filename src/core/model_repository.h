// ModelRepository: the set of models and versions in a repository and in memory. It loads every model at
// startup, then polls its source (repository_source.h: a local directory, object storage) and swaps versions
// in and out without failing in-flight requests:
// a request holds a shared_ptr to the ModelVersion it started on, and an unloaded version is destroyed
// (its queue drained, its threads joined) by the repository's own thread once no request holds it.
// A version that fails to load is reported (log line, metric, state in List()) and the version that was
// serving keeps serving.
//
// Layout: <model>/config.pbtxt and <model>/<version>/<backend's model file>, version > 0. The repository
// reads nothing itself: the source lists, fingerprints and materialises; a backend loads from the local
// directory the source gives it.
// Threading: Get/List/AllReady from any thread. Poll, Load and Unload from any thread, one at a time (op_mu_):
// the source, the entries' load state and on_change run on the thread of the call that holds op_mu_.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/backend.h"
#include "core/model_status.h"
#include "core/mutex.h"
#include "core/repository_source.h"
#include "core/request_observer.h"
#include "core/scheduler.h"

namespace serving {

class Metrics;

// A loaded model version with its scheduler.
class ModelVersion {
 public:
  // `observers` null: nobody watches its requests.
  ModelVersion(std::shared_ptr<const ModelSettings> config, int64_t version, std::unique_ptr<Model> model,
               std::shared_ptr<const VersionObservers> observers = nullptr);
  const VersionObservers& observers() const { return *observers_; }
  // Its statistics, from the observer that keeps them; null when none does.
  std::shared_ptr<const ModelStatistics> statistics() const { return observers_->statistics(); }
  const ModelSettings& config() const { return *config_; }
  const std::shared_ptr<const ModelSettings>& shared_config() const { return config_; }
  int64_t version() const { return version_; }
  const ModelSignature& signature() const { return model_->signature(); }
  Scheduler& scheduler() { return *scheduler_; }

 private:
  std::shared_ptr<const ModelSettings> config_;
  int64_t version_;
  std::unique_ptr<Model> model_;
  std::shared_ptr<const VersionObservers> observers_;
  std::unique_ptr<Scheduler> scheduler_;  // declared last: stops before the model goes away
};

class ModelRepository {
 public:
  struct Options {
    std::chrono::milliseconds poll_interval{2000};  // 0 disables polling
  };

  // `metrics` (model states and load times) and `observers` (asked for each version's observers) may be null.
  ModelRepository(std::unique_ptr<RepositorySource> source, Options options, const BackendRegistry* backends,
                  Metrics* metrics, const RequestObservers* observers = nullptr);
  ~ModelRepository();

  // Brings memory in line with the files. Returns whether anything changed.
  bool Poll() EXCLUDES(op_mu_, mu_);
  // Explicit model control (Triton's repository extension), next to polling. Load reads the model's
  // directory now and loads what its version policy selects (retrying versions that failed); OK once a
  // version is ready, else the reasons. Unload unloads every version and polling leaves the model unloaded
  // (not counted by AllReady) until the next Load.
  Status Load(const std::string& name) EXCLUDES(op_mu_, mu_);
  Status Unload(const std::string& name) EXCLUDES(op_mu_, mu_);
  void StartPolling();
  void StopPolling();
  // The poller's wait before its next poll: the poll interval, doubled for each consecutive poll whose listing
  // failed (storage unreachable), up to 64 intervals or a minute, whichever is longer; the interval again after
  // a listing that succeeds.
  std::chrono::milliseconds NextPollDelay() const;
  // Called after every Poll(), Load() or Unload() that changed something, on that call's thread. Set before
  // polling starts.
  void SetOnChange(std::function<void()> on_change) { on_change_ = std::move(on_change); }

  // `version` empty: the newest ready version. NOT_FOUND for unknown models/versions, UNAVAILABLE when
  // the version exists but is not ready, INVALID_ARGUMENT for a malformed version string.
  StatusOr<std::shared_ptr<ModelVersion>> Get(const std::string& name, const std::string& version) const EXCLUDES(mu_);
  std::vector<ModelInfo> List() const EXCLUDES(mu_);
  // True when there is at least one model and every model not unloaded by request has a ready version.
  bool AllReady() const EXCLUDES(mu_);

 private:
  // A model's entry. Its fields are written by the thread holding op_mu_ (and mu_ too for what Get/List
  // read); the analysis cannot check fields of an object reached through a pointer, the REQUIRES below can.
  struct Entry;
  void PollModel(const std::string& name) REQUIRES(op_mu_) EXCLUDES(mu_);
  // PollModel's steps.
  // False when the source could not say whether the config changed (nothing else is done this poll).
  bool ReadConfig(Entry& entry, const std::string& name) REQUIRES(op_mu_) EXCLUDES(mu_);
  void LoadVersion(Entry& entry, const std::string& name, Backend& backend, int64_t version,
                   const std::string& fingerprint) REQUIRES(op_mu_) EXCLUDES(mu_);
  void UnloadUnwanted(Entry& entry, const std::string& name, const std::set<int64_t>& wanted,
                      const std::set<int64_t>& on_disk) REQUIRES(op_mu_) EXCLUDES(mu_);
  void ForgetGone(Entry& entry, const std::string& name, const std::set<int64_t>& on_disk) REQUIRES(op_mu_)
      EXCLUDES(mu_);
  void SetState(Entry& entry, const std::string& model, int64_t version, VersionState state, std::string reason)
      REQUIRES(op_mu_) EXCLUDES(mu_);
  void ReapRetired() REQUIRES(op_mu_) EXCLUDES(mu_);

  const std::unique_ptr<RepositorySource> source_ PT_GUARDED_BY(op_mu_);
  const Options options_;
  const BackendRegistry* const backends_;
  Metrics* const metrics_;
  const RequestObservers* const observers_;

  Mutex op_mu_ ACQUIRED_BEFORE(mu_);  // one of Poll/Load/Unload at a time
  mutable Mutex mu_;
  std::map<std::string, std::unique_ptr<Entry>> models_ GUARDED_BY(mu_);
  std::vector<std::shared_ptr<ModelVersion>> retired_ GUARDED_BY(mu_);
  bool changed_ GUARDED_BY(op_mu_) = false;
  // Consecutive polls whose listing failed: the poller backs off (NextPollDelay) until one succeeds.
  std::atomic<int> poll_failures_{0};

  std::function<void()> on_change_;  // set before polling starts, then only read
  Mutex poll_mu_;
  CondVar poll_cv_;
  bool stop_polling_ GUARDED_BY(poll_mu_) = false;
  std::thread poller_;
};

}  // namespace serving
