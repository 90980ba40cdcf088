#include "core/model_repository.h"

#include <algorithm>
#include <set>

#include "core/model_config.h"
#include "observability/logger.h"
#include "observability/metrics.h"

namespace serving {
namespace fs = std::filesystem;

struct ModelRepository::Entry {
  std::shared_ptr<const ModelSettings> parsed;  // last config that parsed
  std::string config_fingerprint;
  std::string error;  // config error shown in List()
  std::map<int64_t, std::shared_ptr<ModelVersion>> ready;
  std::map<int64_t, std::string> ready_fingerprint;   // what the ready version was loaded from
  std::map<int64_t, std::string> failed_fingerprint;  // what last failed to load (not retried until it changes)
  std::map<int64_t, VersionInfo> states;
  bool unloaded_by_request = false;  // polling leaves it alone until a Load
};

namespace {

std::set<int64_t> SelectVersions(const config::ModelVersionPolicy& policy, const std::set<int64_t>& on_disk) {
  std::set<int64_t> chosen;
  if (policy.has_all()) return on_disk;
  if (policy.has_specific()) {
    for (int64_t v : policy.specific().versions())
      if (on_disk.count(v)) chosen.insert(v);
    return chosen;
  }
  uint32_t n = policy.latest().num_versions();
  for (auto it = on_disk.rbegin(); it != on_disk.rend() && chosen.size() < n; ++it) chosen.insert(*it);
  return chosen;
}

constexpr const char* kConfigFile = "config.pbtxt";

// The config's default_model_filename, else the backend's.
std::string ModelFileName(const ModelSettings& settings, const Backend& backend, const fs::path& version_dir) {
  return settings.model_filename.empty() ? backend.model_filename(settings, version_dir) : settings.model_filename;
}

}  // namespace

const char* VersionStateName(VersionState s) {
  switch (s) {
    case VersionState::kLoading: return "LOADING";
    case VersionState::kReady: return "READY";
    case VersionState::kUnavailable: return "UNAVAILABLE";
    case VersionState::kFailed: return "FAILED";
  }
  return "UNAVAILABLE";
}

ModelVersion::ModelVersion(std::shared_ptr<const ModelSettings> config, int64_t version, std::unique_ptr<Model> model,
                           std::shared_ptr<const VersionObservers> observers)
    : config_(std::move(config)),
      version_(version),
      model_(std::move(model)),
      observers_(observers ? std::move(observers) : std::make_shared<const VersionObservers>()),
      scheduler_(std::make_unique<Scheduler>(model_.get(), config_, version_, observers_.get())) {}

ModelRepository::ModelRepository(std::unique_ptr<RepositorySource> source, Options options,
                                 const BackendRegistry* backends, Metrics* metrics, const RequestObservers* observers)
    : source_(std::move(source)), options_(options), backends_(backends), metrics_(metrics), observers_(observers) {}

ModelRepository::~ModelRepository() {
  StopPolling();
  MutexLock lock(mu_);
  models_.clear();
  retired_.clear();
}

void ModelRepository::SetState(Entry& e, const std::string& model, int64_t version, VersionState state,
                               std::string reason) {
  {
    MutexLock lock(mu_);
    e.states[version] = VersionInfo{version, state, reason};
  }
  changed_ = true;
  if (metrics_) metrics_->SetModelState(model, std::to_string(version), VersionStateName(state));
  auto level = state == VersionState::kFailed ? logging::Level::kError : logging::Level::kInfo;
  logging::Log(level, "model state changed",
               {{"model", model}, {"version", version}, {"state", VersionStateName(state)}, {"reason", reason}});
}

bool ModelRepository::Poll() {
  MutexLock op(op_mu_);
  changed_ = false;
  std::set<std::string> listed;
  auto names = source_->ListModels();
  for (const auto& name : names.ok() ? *names : std::vector<std::string>{}) {
    if (!IsValidModelName(name)) {
      logging::Warn("skipping repository entry",
                    {{"path", source_->Describe() + "/" + name}, {"reason", "not a valid model name"}});
      continue;
    }
    listed.insert(name);
  }
  // A listing that failed (out of descriptors, a remount in progress, storage unreachable, ...) says nothing
  // about which models are gone: keep serving everything loaded and look again at the next poll.
  if (!names.ok()) {
    const int failures = poll_failures_.fetch_add(1) + 1;
    std::string reason = StatusCodeName(names.status().code());
    for (char& c : reason) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (metrics_) metrics_->CountRepositoryError(reason);
    logging::Error("cannot read model repository", {{"path", source_->Describe()},
                                                    {"reason", names.status().message()},
                                                    {"consecutive_failures", failures},
                                                    {"next_poll_ms", static_cast<int64_t>(NextPollDelay().count())}});
  } else if (poll_failures_.exchange(0) > 0) {
    logging::Info("model repository readable again", {{"path", source_->Describe()}});
  }
  for (const auto& name : listed) PollModel(name);

  // Models whose directory is gone: unload every version.
  std::vector<std::string> gone;
  if (names.ok()) {
    MutexLock lock(mu_);
    for (const auto& [name, _] : models_)
      if (!listed.count(name)) gone.push_back(name);
  }
  for (const auto& name : gone) {
    std::unique_ptr<Entry> entry;
    {
      MutexLock lock(mu_);
      entry = std::move(models_[name]);
      models_.erase(name);
      for (auto& [v, mv] : entry->ready) retired_.push_back(mv);
    }
    for (auto& [v, _] : entry->ready) source_->Release(name, v);
    if (metrics_) {
      for (auto& [v, info] : entry->states) metrics_->ForgetModelVersion(name, std::to_string(v));
      metrics_->ForgetModelVersion(name, "config");
    }
    logging::Info("model removed", {{"model", name}});
    changed_ = true;
  }
  ReapRetired();
  if (changed_ && on_change_) on_change_();
  return changed_;
}

void ModelRepository::PollModel(const std::string& name) {
  Entry* e;
  {
    MutexLock lock(mu_);
    auto& slot = models_[name];
    if (!slot) slot = std::make_unique<Entry>();
    e = slot.get();
    if (e->unloaded_by_request) return;
  }
  if (!ReadConfig(*e, name)) return;
  if (!e->parsed || !e->error.empty()) return;  // keep serving what is loaded with the last good config
  const ModelSettings& cfg = *e->parsed;
  Backend* backend = backends_->Find(cfg.backend);  // the config was checked against the registry

  // The versions in the source, each with the fingerprint of what loading it would read. A listing that
  // failed leaves everything as it is until the next poll.
  auto listed = source_->ListVersions(name);
  if (!listed.ok()) {
    logging::Error("cannot list model versions", {{"model", name}, {"reason", listed.status().message()}});
    return;
  }
  std::map<int64_t, std::string> on_disk;
  for (const auto& [v, fp] : *listed) on_disk[v] = e->config_fingerprint + "|" + fp;
  std::set<int64_t> versions;
  for (const auto& [v, _] : on_disk) versions.insert(v);
  const std::set<int64_t> wanted = SelectVersions(cfg.config.version_policy(), versions);

  for (int64_t v : wanted) {
    const std::string& fp = on_disk[v];
    if (e->ready_fingerprint.count(v) && e->ready_fingerprint[v] == fp) continue;
    if (e->failed_fingerprint.count(v) && e->failed_fingerprint[v] == fp) continue;
    LoadVersion(*e, name, *backend, v, fp);
  }
  UnloadUnwanted(*e, name, wanted, versions);
  ForgetGone(*e, name, versions);
}

bool ModelRepository::ReadConfig(Entry& e, const std::string& name) {
  // A store that cannot be reached says nothing about the config: keep the one read last, as a failed
  // listing keeps the models (not a "rejected" config, which would also forget why versions failed).
  const StatusOr<std::string> fp = source_->FileFingerprint(name, kConfigFile);
  if (!fp.ok()) {
    logging::Warn("cannot check model config", {{"model", name}, {"reason", fp.status().message()}});
    return false;
  }
  if (*fp == e.config_fingerprint) return true;
  e.config_fingerprint = *fp;
  const std::string file_name = source_->Describe() + "/" + name + "/" + kConfigFile;
  auto text = source_->ReadFile(name, kConfigFile, kMaxConfigBytes);
  StatusOr<ModelSettings> cfg =
      text.ok() ? ParseModelConfig(
                      *text, file_name, name,
                      [&](const std::string& file, size_t max_bytes)
                          REQUIRES(op_mu_) { return source_->ReadFile(name, file, max_bytes); },
                      *backends_,
                      observers_ ? ParameterCheck([this](const std::string& key, const std::string& value) {
                        return observers_->CheckParameter(key, value);
                      })
                                 : ParameterCheck())
                : StatusOr<ModelSettings>(text.status());
  changed_ = true;
  MutexLock lock(mu_);
  if (cfg.ok()) {
    e.parsed = std::make_shared<const ModelSettings>(std::move(cfg).value());
    e.error.clear();
    e.failed_fingerprint.clear();
    if (metrics_) metrics_->ForgetModelVersion(name, "config");
    return true;
  }
  // A file that could not be read (not one that did not parse) is read again at the next poll.
  if (cfg.status().code() == StatusCode::kNotFound) e.config_fingerprint.clear();
  e.error = cfg.status().message();
  logging::Error("model config rejected", {{"model", name}, {"reason", e.error}});
  if (metrics_) metrics_->SetModelState(name, "config", "FAILED");
  return true;
}

void ModelRepository::LoadVersion(Entry& e, const std::string& name, Backend& backend, int64_t v,
                                  const std::string& fingerprint) {
  SetState(e, name, v, VersionState::kLoading, e.ready.count(v) ? "reloading" : "");
  const auto start = Clock::now();
  std::shared_ptr<ModelVersion> loaded;
  Status status;
  auto dir = source_->Materialize(name, v);
  auto model = dir.ok() ? backend.Load(*e.parsed, *dir / ModelFileName(*e.parsed, backend, *dir))
                        : StatusOr<std::unique_ptr<Model>>(dir.status());
  if (model.ok()) {
    auto reconciled = std::make_shared<ModelSettings>(*e.parsed);
    status = ReconcileSignature((*model)->signature(), reconciled.get());
    if (status.ok())
      loaded = std::make_shared<ModelVersion>(reconciled, v, std::move(model).value(),
                                              observers_ ? observers_->ForVersion(*reconciled, v) : nullptr);
  } else {
    status = model.status();
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (metrics_) metrics_->SetModelLoadDuration(name, std::to_string(v), seconds);
  if (!loaded) {
    // Files that could not be fetched (the store unreachable mid-download, a full disk: UNAVAILABLE) are
    // fetched again at the next poll; files that were had and did not load wait until they change.
    const bool transient = !dir.ok() && dir.status().code() == StatusCode::kUnavailable;
    if (!transient) e.failed_fingerprint[v] = fingerprint;
    const bool still_serving = e.ready.count(v) > 0;
    if (!still_serving) source_->Release(name, v);
    SetState(e, name, v, still_serving ? VersionState::kReady : VersionState::kFailed,
             (still_serving ? "reload failed, previous files still serving: " : "") + status.message() +
                 (transient ? " (tried again at the next poll)" : ""));
    if (still_serving)
      logging::Error("model reload failed", {{"model", name}, {"version", v}, {"reason", status.message()}});
    return;
  }
  {
    MutexLock lock(mu_);
    auto& slot = e.ready[v];
    if (slot) retired_.push_back(slot);
    slot = loaded;
    e.ready_fingerprint[v] = fingerprint;
    e.failed_fingerprint.erase(v);
  }
  SetState(e, name, v, VersionState::kReady, "");
  logging::Info("model version loaded", {{"model", name}, {"version", v}, {"load_seconds", seconds}});
}

void ModelRepository::UnloadUnwanted(Entry& e, const std::string& name, const std::set<int64_t>& wanted,
                                     const std::set<int64_t>& on_disk) {
  // Never the last ready version while no wanted one is ready.
  bool wanted_ready = false;
  for (int64_t v : wanted) wanted_ready |= e.ready.count(v) > 0;
  std::vector<int64_t> drop;
  for (const auto& [v, _] : e.ready)
    if (!wanted.count(v) && (wanted_ready || !on_disk.count(v))) drop.push_back(v);
  for (int64_t v : drop) {
    {
      MutexLock lock(mu_);
      retired_.push_back(e.ready[v]);
      e.ready.erase(v);
      e.ready_fingerprint.erase(v);
    }
    source_->Release(name, v);
    SetState(e, name, v, VersionState::kUnavailable, on_disk.count(v) ? "unloaded by version policy" : "removed");
  }
}

void ModelRepository::ForgetGone(Entry& e, const std::string& name, const std::set<int64_t>& on_disk) {
  // States of versions that are gone from disk and not loaded, and their metric series.
  std::vector<int64_t> forgotten;
  {
    MutexLock lock(mu_);
    for (auto it = e.states.begin(); it != e.states.end();) {
      if (!on_disk.count(it->first) && !e.ready.count(it->first)) {
        e.failed_fingerprint.erase(it->first);
        forgotten.push_back(it->first);
        it = e.states.erase(it);
      } else {
        ++it;
      }
    }
  }
  if (metrics_)
    for (int64_t v : forgotten) metrics_->ForgetModelVersion(name, std::to_string(v));
}

void ModelRepository::ReapRetired() {
  std::vector<std::shared_ptr<ModelVersion>> done;
  {
    MutexLock lock(mu_);
    auto it = std::partition(retired_.begin(), retired_.end(),
                             [](const std::shared_ptr<ModelVersion>& v) { return v.use_count() > 1; });
    done.assign(std::make_move_iterator(it), std::make_move_iterator(retired_.end()));
    retired_.erase(it, retired_.end());
  }
  done.clear();  // destroys the versions here, on the repository's thread
}

std::chrono::milliseconds ModelRepository::NextPollDelay() const {
  // Doubling per consecutive failure, up to 64 intervals or a minute, whichever is longer than the interval.
  const int failures = std::min(poll_failures_.load(), 6);
  const auto cap = std::max(options_.poll_interval, std::chrono::milliseconds(60000));
  return std::min(options_.poll_interval * (int64_t{1} << failures), cap);
}

void ModelRepository::StartPolling() {
  if (options_.poll_interval.count() <= 0 || poller_.joinable()) return;
  poller_ = std::thread([this] {
    MutexLock lock(poll_mu_);
    while (!poll_cv_.WaitFor(poll_mu_, NextPollDelay(), [this]() REQUIRES(poll_mu_) { return stop_polling_; })) {
      lock.Unlock();
      Poll();
      lock.Lock();
    }
  });
}

void ModelRepository::StopPolling() {
  {
    MutexLock lock(poll_mu_);
    stop_polling_ = true;
  }
  poll_cv_.NotifyAll();
  if (poller_.joinable()) poller_.join();
}

StatusOr<std::shared_ptr<ModelVersion>> ModelRepository::Get(const std::string& name,
                                                             const std::string& version) const {
  int64_t v = 0;
  if (!version.empty() && !ParseVersionName(version, &v))
    return InvalidArgument("version '" + version + "' is not a positive integer");
  MutexLock lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return NotFound("model '" + name + "' not found");
  const Entry& e = *it->second;
  if (version.empty()) {
    if (e.ready.empty()) {
      std::string why = e.error;
      for (const auto& [_, info] : e.states)
        if (!info.reason.empty()) why = info.reason;
      return Unavailable("model '" + name + "' has no ready version" + (why.empty() ? "" : ": " + why));
    }
    return e.ready.rbegin()->second;
  }
  auto r = e.ready.find(v);
  if (r != e.ready.end()) return r->second;
  auto s = e.states.find(v);
  if (s == e.states.end()) return NotFound("model '" + name + "' has no version " + version);
  return Unavailable("model '" + name + "' version " + version + " is " + VersionStateName(s->second.state) +
                     (s->second.reason.empty() ? "" : ": " + s->second.reason));
}

std::vector<ModelInfo> ModelRepository::List() const {
  MutexLock lock(mu_);
  std::vector<ModelInfo> out;
  for (const auto& [name, e] : models_) {
    ModelInfo info;
    info.name = name;
    info.config = e->ready.empty() ? e->parsed : e->ready.rbegin()->second->shared_config();
    info.error = e->error;
    for (const auto& [v, s] : e->states) info.versions.push_back(s);
    out.push_back(std::move(info));
  }
  return out;
}

bool ModelRepository::AllReady() const {
  MutexLock lock(mu_);
  if (models_.empty()) return false;
  for (const auto& [_, e] : models_)
    if (e->ready.empty() && !e->unloaded_by_request) return false;
  return true;
}

Status ModelRepository::Load(const std::string& name) {
  MutexLock op(op_mu_);
  if (!IsValidModelName(name) || source_->ListVersions(name).status().code() == StatusCode::kNotFound)
    return NotFound("model '" + name + "' is not in the repository");
  changed_ = false;
  {
    MutexLock lock(mu_);
    if (auto it = models_.find(name); it != models_.end()) {
      it->second->unloaded_by_request = false;
      it->second->failed_fingerprint.clear();  // an explicit load retries what failed
    }
  }
  PollModel(name);
  ReapRetired();
  if (changed_ && on_change_) on_change_();
  MutexLock lock(mu_);
  const Entry& e = *models_.at(name);
  if (!e.error.empty()) return InvalidArgument("failed to load model '" + name + "': " + e.error);
  if (!e.ready.empty()) return Status::Ok();
  std::string reasons;
  for (const auto& [v, info] : e.states)
    if (info.state == VersionState::kFailed) reasons += (reasons.empty() ? "" : "; ") + info.reason;
  return InvalidArgument("failed to load model '" + name +
                         "': " + (reasons.empty() ? "no version directory holds a model file" : reasons));
}

Status ModelRepository::Unload(const std::string& name) {
  MutexLock op(op_mu_);
  changed_ = false;
  Entry* e = nullptr;
  std::vector<int64_t> versions;
  {
    MutexLock lock(mu_);
    auto it = models_.find(name);
    if (it == models_.end()) return NotFound("model '" + name + "' not found");
    e = it->second.get();
    e->unloaded_by_request = true;
    for (auto& [v, mv] : e->ready) {
      retired_.push_back(mv);
      versions.push_back(v);
    }
    e->ready.clear();
    e->ready_fingerprint.clear();
  }
  changed_ = true;
  for (int64_t v : versions) {
    source_->Release(name, v);
    SetState(*e, name, v, VersionState::kUnavailable, "unloaded by request");
  }
  ReapRetired();
  if (on_change_) on_change_();
  return Status::Ok();
}

}  // namespace serving
