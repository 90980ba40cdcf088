// The bearer tokens file (--auth-tokens-file): each token with a name (what logs show, never the token),
// its scopes and an optional expiry. A token is given either raw ("token") or as the hex SHA-256 of the raw
// token ("sha256"), so the file need not hold the secret itself. In memory only digests are kept, and a
// presented token is compared with every digest in constant time.
//
//   {"tokens": [
//     {"name": "web", "token": "…", "scopes": ["infer", "metadata"], "expires": "2027-01-01T00:00:00Z"},
//     {"name": "ops", "sha256": "9f86d081…", "scopes": ["model-control", "statistics"]}]}
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace serving::auth {

// Scopes a token may hold, as bits.
enum class Scope : uint32_t {
  kInfer = 1,
  kMetadata = 2,
  kStatistics = 4,
  kModelControl = 8,
  kHealth = 16,
  kMetrics = 32,
};
const char* ScopeName(Scope scope);

using Digest = std::array<unsigned char, 32>;
Digest Sha256(std::string_view data);

struct Token {
  std::string name;
  Digest digest{};
  uint32_t scopes = 0;  // Scope bits
  std::optional<std::chrono::system_clock::time_point> expires;
  bool Has(Scope scope) const { return (scopes & static_cast<uint32_t>(scope)) != 0; }
};

class TokenSet {
 public:
  explicit TokenSet(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}
  // The token whose digest is `presented`'s, or null. Compares with every token whatever matches, each in
  // constant time, so the time taken says nothing about how close a guess was.
  const Token* Find(std::string_view presented) const;
  size_t size() const { return tokens_.size(); }

 private:
  std::vector<Token> tokens_;
};

// Limits on the file: it is read at startup and on every change.
constexpr size_t kMaxTokensFileBytes = size_t{1} << 20;
constexpr size_t kMaxTokens = 10000;
constexpr size_t kMinTokenBytes = 16;    // shorter raw tokens are refused as guessable
constexpr size_t kMaxTokenBytes = 4096;  // a longer presented token is refused before hashing

// Parses the file's text; INVALID_ARGUMENT naming the entry and field at fault.
StatusOr<TokenSet> ParseTokens(std::string_view text);
// Reads and parses `path` (at most kMaxTokensFileBytes).
StatusOr<TokenSet> LoadTokensFile(const std::string& path);

}  // namespace serving::auth
