#include "sources/local_source.h"

#include <fstream>
#include <sstream>

namespace serving {
namespace fs = std::filesystem;

namespace {

// A version directory with more entries than this is fingerprinted by its first ones only.
constexpr int kMaxFingerprintEntries = 10000;

// Changes whenever the file is rewritten or replaced; "" when it cannot be read.
std::string FileStamp(const fs::path& p) {
  std::error_code ec;
  const auto t = fs::last_write_time(p, ec);
  if (ec) return "";
  const auto size = fs::file_size(p, ec);
  if (ec) return "";
  return std::to_string(t.time_since_epoch().count()) + ":" + std::to_string(size);
}

}  // namespace

LocalDirectorySource::LocalDirectorySource(fs::path root) : root_(std::move(root)) {
  std::error_code ec;
  canonical_root_ = fs::canonical(root_, ec);
  if (ec) canonical_root_ = root_;
}

bool LocalDirectorySource::Inside(const fs::path& p) const {
  std::error_code ec;
  const fs::path c = fs::canonical(p, ec);
  if (ec) return false;
  const auto rel = c.lexically_relative(canonical_root_);
  return !rel.empty() && *rel.begin() != "..";
}

StatusOr<fs::path> LocalDirectorySource::ModelDir(const std::string& model) const {
  const fs::path dir = root_ / model;
  std::error_code ec;
  if (!IsPlainName(model) || !fs::is_directory(dir, ec) || !Inside(dir))
    return NotFound("model '" + model + "' is not in the repository");
  return dir;
}

StatusOr<std::vector<std::string>> LocalDirectorySource::ListModels() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& d : fs::directory_iterator(root_, ec)) {
    std::error_code entry_ec;
    if (d.is_directory(entry_ec) && Inside(d.path())) names.push_back(d.path().filename().string());
  }
  if (ec) return Unavailable("cannot read " + root_.string() + ": " + ec.message());
  return names;
}

StatusOr<std::map<int64_t, std::string>> LocalDirectorySource::ListVersions(const std::string& model) {
  SERVING_ASSIGN_OR_RETURN(const fs::path dir, ModelDir(model));
  std::map<int64_t, std::string> versions;
  std::error_code ec;
  for (const auto& d : fs::directory_iterator(dir, ec)) {
    int64_t v = 0;
    std::error_code entry_ec;
    if (!d.is_directory(entry_ec) || !ParseVersionName(d.path().filename().string(), &v) || !Inside(d.path())) continue;
    uint64_t h = kFingerprintSeed;
    bool escapes = false;
    int entries = 0;
    // Sorted, so the fingerprint does not depend on the order the directory lists its entries in.
    std::map<std::string, std::string> files;
    for (auto it =
             fs::recursive_directory_iterator(d.path(), fs::directory_options::follow_directory_symlink, entry_ec);
         !entry_ec && it != fs::recursive_directory_iterator() && entries < kMaxFingerprintEntries;
         it.increment(entry_ec), ++entries) {
      if (it->is_symlink(entry_ec) && !Inside(it->path())) escapes = true;
      if (it->is_regular_file(entry_ec))
        files[it->path().lexically_relative(d.path()).string()] = FileStamp(it->path());
    }
    if (escapes) continue;
    for (const auto& [name, stamp] : files) {
      MixFingerprint(&h, name);
      MixFingerprint(&h, stamp);
    }
    versions[v] = std::to_string(files.size()) + ":" + std::to_string(h);
  }
  if (ec) return Unavailable("cannot read " + dir.string() + ": " + ec.message());
  return versions;
}

StatusOr<std::string> LocalDirectorySource::FileFingerprint(const std::string& model, const std::string& file) {
  auto dir = ModelDir(model);
  if (!dir.ok() || !IsPlainName(file)) return std::string();
  return FileStamp(*dir / file);
}

StatusOr<std::string> LocalDirectorySource::ReadFile(const std::string& model, const std::string& file,
                                                     size_t max_bytes) {
  const fs::path path = root_ / model / file;
  auto dir = ModelDir(model);
  if (!dir.ok() || !IsPlainName(file) || !Inside(path)) return NotFound(path.string() + ": cannot be read");
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) return NotFound(path.string() + ": cannot be read: " + ec.message());
  if (size > max_bytes)
    return InvalidArgument(path.string() + ": larger than " + std::to_string(max_bytes >> 20) + " MiB");
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path.string() + ": cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

StatusOr<fs::path> LocalDirectorySource::Materialize(const std::string& model, int64_t version) {
  SERVING_ASSIGN_OR_RETURN(const fs::path dir, ModelDir(model));
  const fs::path path = dir / std::to_string(version);
  std::error_code ec;
  if (!fs::is_directory(path, ec) || !Inside(path)) return NotFound(path.string() + " is not a version directory");
  return path;
}

}  // namespace serving
