// RepositorySource: where a model repository's files come from. The repository (model_repository.h) asks a
// source what models and versions exist, reads each model's own small files (config.pbtxt, label files)
// through it and has it materialise a version as a local directory, which is all a backend ever sees. The
// source knows the storage (a local directory: local_source.h; object storage next); the repository knows
// the version state machine and never touches the storage itself.
//
// Layout every source presents: <model>/config.pbtxt, <model>/<label files>, <model>/<version>/<files>,
// version a positive integer. Fingerprints are opaque strings that change whenever what they cover changes;
// the repository reloads a version when its fingerprint changes and never otherwise.
//
// Threading: called by one thread at a time (whichever holds the repository's operation lock: the polling
// thread, the startup thread or the core's control thread); implementations need no locking of their own
// against the repository.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace serving {

class RepositorySource {
 public:
  virtual ~RepositorySource() = default;

  // For log lines and errors: "models/repository", "s3://bucket/prefix".
  virtual std::string Describe() const = 0;

  // The names of the entries that may be models (the repository checks each name). An error means the
  // listing itself failed: nothing can be concluded about which models are gone.
  virtual StatusOr<std::vector<std::string>> ListModels() = 0;

  // The model's versions, each with a fingerprint of all of that version's files. NOT_FOUND: no such model.
  virtual StatusOr<std::map<int64_t, std::string>> ListVersions(const std::string& model) = 0;

  // A file of the model's own directory (not of a version): "" when it does not exist. UNAVAILABLE when the
  // source cannot tell (a store unreachable): the repository then keeps what it read last.
  virtual StatusOr<std::string> FileFingerprint(const std::string& model, const std::string& file) = 0;
  // Its content. NOT_FOUND when it does not exist or cannot be read; INVALID_ARGUMENT when larger than
  // `max_bytes`. Errors name the file as the user knows it (Describe()/model/file).
  virtual StatusOr<std::string> ReadFile(const std::string& model, const std::string& file, size_t max_bytes) = 0;

  // A local directory that holds the version's files until Release(model, version) (or the source's end),
  // for the backend to load from.
  virtual StatusOr<std::filesystem::path> Materialize(const std::string& model, int64_t version) = 0;
  // The repository no longer needs the version's local files (it unloaded the version or loaded it again).
  virtual void Release(const std::string& model, int64_t version) = 0;
};

// A version directory's name: a positive integer of at most 18 digits.
bool ParseVersionName(std::string_view name, int64_t* version);

// Helpers for sources.
// A single path segment that names nothing else: not empty, ".", "..", and without '/' or NUL.
bool IsPlainName(std::string_view name);
// Whether `path` ('/'-separated) is made of plain names only, so it cannot leave the directory it is under.
bool IsPlainRelativePath(std::string_view path);
// Adds `s` to an FNV-1a hash (then a separator): a fingerprint of many files stays short.
void MixFingerprint(uint64_t* hash, std::string_view s);
inline constexpr uint64_t kFingerprintSeed = 14695981039346656037ull;

}  // namespace serving
