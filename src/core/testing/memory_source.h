// A RepositorySource held in memory, for unit tests of the repository (as leveldb's tests use an in-memory
// Env): files are strings, a version's fingerprint is a hash of its files' names and contents, and a
// version is materialised by writing its files into a directory of its own under the system's temp dir
// (the backend needs a local path). The test keeps a pointer to the Files and changes them between polls.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/repository_source.h"

namespace serving::testing {

class MemorySource final : public RepositorySource {
 public:
  struct Model {
    std::map<std::string, std::string> files;                        // the model's own: config.pbtxt, labels
    std::map<int64_t, std::map<std::string, std::string>> versions;  // version -> file -> content
  };
  // What the test changes; guarded by mu (the repository may poll on its own thread).
  struct Files {
    std::mutex mu;
    std::map<std::string, Model> models;
    bool listing_fails = false;
    bool files_unreachable = false;  // FileFingerprint answers UNAVAILABLE (the listing still works)
    int materialized = 0;
    std::vector<std::pair<std::string, int64_t>> released;
  };

  explicit MemorySource(std::shared_ptr<Files> files) : files_(std::move(files)) {
    static std::atomic<int> next{0};
    dir_ = std::filesystem::temp_directory_path() /
           ("memory_source_" + std::to_string(getpid()) + "_" + std::to_string(next++));
  }
  ~MemorySource() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string Describe() const override { return "memory"; }
  StatusOr<std::vector<std::string>> ListModels() override {
    std::lock_guard<std::mutex> l(files_->mu);
    if (files_->listing_fails) return Unavailable("the listing failed");
    std::vector<std::string> names;
    for (const auto& [name, _] : files_->models) names.push_back(name);
    return names;
  }
  StatusOr<std::map<int64_t, std::string>> ListVersions(const std::string& model) override {
    std::lock_guard<std::mutex> l(files_->mu);
    auto it = files_->models.find(model);
    if (it == files_->models.end()) return NotFound("no model " + model);
    std::map<int64_t, std::string> out;
    for (const auto& [v, files] : it->second.versions) {
      std::string all;
      for (const auto& [name, content] : files) all += name + '\0' + content + '\0';
      out[v] = std::to_string(std::hash<std::string>()(all));
    }
    return out;
  }
  StatusOr<std::string> FileFingerprint(const std::string& model, const std::string& file) override {
    std::lock_guard<std::mutex> l(files_->mu);
    if (files_->files_unreachable) return Unavailable("the store is unreachable");
    const std::string* content = Find(model, file);
    if (!content) return std::string();
    return std::to_string(std::hash<std::string>()(*content)) + ":" + std::to_string(content->size());
  }
  StatusOr<std::string> ReadFile(const std::string& model, const std::string& file, size_t max_bytes) override {
    std::lock_guard<std::mutex> l(files_->mu);
    const std::string* content = Find(model, file);
    if (!content) return NotFound("memory/" + model + "/" + file + ": no such file");
    if (content->size() > max_bytes) return InvalidArgument("memory/" + model + "/" + file + ": too large");
    return *content;
  }
  StatusOr<std::filesystem::path> Materialize(const std::string& model, int64_t version) override {
    std::lock_guard<std::mutex> l(files_->mu);
    auto it = files_->models.find(model);
    if (it == files_->models.end() || !it->second.versions.count(version)) return NotFound("no such version");
    const auto dir = dir_ / model / std::to_string(version);
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    for (const auto& [name, content] : it->second.versions.at(version)) std::ofstream(dir / name) << content;
    ++files_->materialized;
    return dir;
  }
  void Release(const std::string& model, int64_t version) override {
    std::lock_guard<std::mutex> l(files_->mu);
    files_->released.emplace_back(model, version);
  }

 private:
  const std::string* Find(const std::string& model, const std::string& file) const {
    auto it = files_->models.find(model);
    if (it == files_->models.end()) return nullptr;
    auto f = it->second.files.find(file);
    return f == it->second.files.end() ? nullptr : &f->second;
  }

  std::shared_ptr<Files> files_;
  std::filesystem::path dir_;
};

}  // namespace serving::testing
