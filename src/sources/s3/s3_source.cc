#include "sources/s3/s3_source.h"

#include "observability/logger.h"
#include "observability/metrics.h"

namespace serving {

namespace fs = std::filesystem;

S3Source::S3Source(std::unique_ptr<s3::Client> client, Options options)
    : client_(std::move(client)), options_(std::move(options)), dir_(options_.downloads->path()) {}

Status S3Source::Check() { return client_->List(client_->location().prefix, "/", "").status(); }

Status S3Source::ForEachPage(const std::string& prefix, const std::string& delimiter,
                             const std::function<Status(s3::ListPage&)>& take) {
  std::string token;
  do {
    SERVING_ASSIGN_OR_RETURN(s3::ListPage page, client_->List(prefix, delimiter, token));
    SERVING_RETURN_IF_ERROR(take(page));
    token = page.truncated ? page.next_token : "";
  } while (!token.empty());
  return Status::Ok();
}

StatusOr<std::vector<s3::Object>> S3Source::ListAll(const std::string& prefix) {
  std::vector<s3::Object> all;
  SERVING_RETURN_IF_ERROR(ForEachPage(prefix, "", [&](s3::ListPage& page) {
    for (auto& o : page.objects) all.push_back(std::move(o));
    if (all.size() > kMaxListedKeys)
      return InvalidArgument("model repository " + Describe() + ": over 100000 keys under '" + prefix + "'");
    return Status::Ok();
  }));
  return all;
}

StatusOr<std::vector<std::string>> S3Source::ListModels() {
  const std::string& prefix = client_->location().prefix;
  std::vector<std::string> models;
  SERVING_RETURN_IF_ERROR(ForEachPage(prefix, "/", [&](s3::ListPage& page) {
    for (const std::string& p : page.common_prefixes) {
      if (p.size() <= prefix.size() + 1 || p.compare(0, prefix.size(), prefix) != 0) continue;
      models.push_back(p.substr(prefix.size(), p.size() - prefix.size() - 1));
    }
    if (models.size() > kMaxListedKeys)
      return InvalidArgument("model repository " + Describe() + ": over 100000 models");
    return Status::Ok();
  }));
  return models;
}

StatusOr<std::map<int64_t, std::string>> S3Source::ListVersions(const std::string& model) {
  if (!IsPlainName(model)) return NotFound("model '" + model + "' is not in the repository");
  const std::string prefix = ModelPrefix(model);
  SERVING_ASSIGN_OR_RETURN(const std::vector<s3::Object> objects, ListAll(prefix));
  if (objects.empty()) return NotFound("model '" + model + "' is not in the repository");
  std::map<int64_t, VersionFiles> versions;
  std::set<int64_t> unsafe;
  for (const s3::Object& o : objects) {
    const std::string rel = o.key.substr(prefix.size());
    const size_t slash = rel.find('/');
    int64_t v = 0;
    if (slash == std::string::npos || !ParseVersionName(rel.substr(0, slash), &v)) continue;  // the model's own
    const std::string file = rel.substr(slash + 1);
    if (file.empty() && o.size == 0) continue;  // a "directory" marker some tools write
    if (!IsPlainRelativePath(file)) {
      if (unsafe.insert(v).second)
        logging::Warn("model version not served: a key would leave its directory",
                      {{"repository", Describe()}, {"model", model}, {"version", v}, {"key", o.key.substr(0, 256)}});
      continue;
    }
    versions[v][file] = o;
  }
  std::map<int64_t, std::string> fingerprints;
  for (auto& [v, files] : versions) {
    if (unsafe.count(v)) continue;
    uint64_t h = kFingerprintSeed;
    for (const auto& [file, o] : files) {
      MixFingerprint(&h, file);
      MixFingerprint(&h, o.etag);
      MixFingerprint(&h, std::to_string(o.size));
    }
    fingerprints[v] = std::to_string(files.size()) + ":" + std::to_string(h);
  }
  for (int64_t v : unsafe) versions.erase(v);
  listed_[model] = std::move(versions);
  return fingerprints;
}

StatusOr<std::string> S3Source::FileFingerprint(const std::string& model, const std::string& file) {
  if (!IsPlainName(model) || !IsPlainName(file)) return std::string();
  auto head = client_->Head(ModelPrefix(model) + file);
  // Unreachable (or a 5xx, 429): unknown, not absent. A 403 is how S3 answers HEAD of a missing key to an
  // identity that may not list: absent, as a 404.
  if (!head.ok() && head.status().code() == StatusCode::kUnavailable) return head.status();
  if (!head.ok()) return std::string();
  return head->etag + ":" + std::to_string(head->size);
}

StatusOr<std::string> S3Source::ReadFile(const std::string& model, const std::string& file, size_t max_bytes) {
  const std::string name = Describe() + "/" + model + "/" + file;
  if (!IsPlainName(model) || !IsPlainName(file)) return NotFound(name + ": cannot be read");
  auto content = client_->Get(ModelPrefix(model) + file, max_bytes);
  if (content.ok()) return content;
  if (content.status().code() == StatusCode::kInvalidArgument) return content.status();
  return NotFound(name + ": cannot be read: " + content.status().message());
}

StatusOr<fs::path> S3Source::Materialize(const std::string& model, int64_t version) {
  auto m = listed_.find(model);
  if (m == listed_.end() || !m->second.count(version))
    return NotFound("model '" + model + "' version " + std::to_string(version) + " is not in the repository");
  const VersionFiles& files = m->second.at(version);
  uint64_t total = 0;
  for (const auto& [file, o] : files) {
    if (o.size > options_.max_file_bytes)
      return InvalidArgument(Describe() + "/" + model + "/" + std::to_string(version) + "/" + file + " is " +
                             std::to_string(o.size) + " bytes, over --repository-max-file-bytes (" +
                             std::to_string(options_.max_file_bytes) + ")");
    total += o.size;
  }
  if (total > options_.max_model_bytes)
    return InvalidArgument(Describe() + "/" + model + "/" + std::to_string(version) + " is " + std::to_string(total) +
                           " bytes, over --repository-max-model-bytes (" + std::to_string(options_.max_model_bytes) +
                           ")");
  Release(model, version);  // a version loaded again (its files changed) is downloaded afresh
  const fs::path final_dir = dir_ / model / std::to_string(version);
  const fs::path tmp = dir_ / model / (".partial-" + std::to_string(version));
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return Unavailable("cannot create " + tmp.string() + ": " + ec.message());
  const auto start = std::chrono::steady_clock::now();
  uint64_t downloaded = 0;
  for (const auto& [file, o] : files) {
    const fs::path path = tmp / file;
    fs::create_directories(path.parent_path(), ec);
    auto bytes =
        client_->Download(o.key, path, std::min(options_.max_file_bytes, options_.max_model_bytes - downloaded));
    if (!bytes.ok()) {
      fs::remove_all(tmp, ec);
      return bytes.status();
    }
    downloaded += *bytes;
  }
  fs::rename(tmp, final_dir, ec);
  if (ec) {
    fs::remove_all(tmp, ec);
    return Unavailable("cannot move the download into " + final_dir.string() + ": " + ec.message());
  }
  local_[{model, version}] = final_dir;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (options_.metrics) options_.metrics->CountDownload(downloaded, seconds);
  logging::Info("model version downloaded", {{"repository", Describe()},
                                             {"model", model},
                                             {"version", version},
                                             {"files", files.size()},
                                             {"bytes", static_cast<int64_t>(downloaded)},
                                             {"seconds", seconds}});
  return final_dir;
}

void S3Source::Release(const std::string& model, int64_t version) {
  auto it = local_.find({model, version});
  if (it == local_.end()) return;
  std::error_code ec;
  fs::remove_all(it->second, ec);
  local_.erase(it);
}

}  // namespace serving
