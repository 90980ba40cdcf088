#include "auth/token_file.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>

namespace serving::auth {
namespace {

using nlohmann::json;

constexpr int kMaxDepth = 4;  // {"tokens": [{"scopes": [...]}]}

StatusOr<Scope> ParseScope(const std::string& name) {
  for (Scope s :
       {Scope::kInfer, Scope::kMetadata, Scope::kStatistics, Scope::kModelControl, Scope::kHealth, Scope::kMetrics})
    if (name == ScopeName(s)) return s;
  return InvalidArgument("unknown scope " + Quote(name) +
                         " (scopes: infer, metadata, statistics, model-control, health, metrics)");
}

// "2027-01-01T00:00:00Z" (UTC, RFC 3339 without fractions or offsets).
StatusOr<std::chrono::system_clock::time_point> ParseTime(const std::string& text) {
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (end == nullptr || *end != '\0')
    return InvalidArgument("expires " + Quote(text) + " is not a UTC time like 2027-01-01T00:00:00Z");
  // system_clock counts nanoseconds in 64 bits (until 2262): a later year would overflow the conversion.
  constexpr std::time_t kLatest = 6'000'000'000;  // in 2160
  const std::time_t secs = timegm(&tm);
  if (secs < 0 || secs > kLatest) return InvalidArgument("expires " + Quote(text) + " is not between 1970 and 2160");
  return std::chrono::system_clock::from_time_t(secs);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

StatusOr<Digest> ParseHexDigest(const std::string& hex) {
  Digest d{};
  if (hex.size() != 2 * d.size()) return InvalidArgument("sha256 must be 64 hex digits");
  for (size_t i = 0; i < d.size(); ++i) {
    const int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return InvalidArgument("sha256 must be 64 hex digits");
    d[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return d;
}

StatusOr<Token> ParseToken(const json& entry) {
  if (!entry.is_object()) return InvalidArgument("is not an object");
  Token t;
  auto name = entry.find("name");
  if (name == entry.end() || !name->is_string() || name->get_ref<const std::string&>().empty())
    return InvalidArgument("needs a \"name\" (what logs show instead of the token)");
  t.name = name->get<std::string>();
  auto raw = entry.find("token");
  auto hex = entry.find("sha256");
  if ((raw == entry.end()) == (hex == entry.end())) return InvalidArgument("needs exactly one of token and sha256");
  if (raw != entry.end()) {
    if (!raw->is_string()) return InvalidArgument("token must be a string");
    const auto& value = raw->get_ref<const std::string&>();
    if (value.size() < kMinTokenBytes || value.size() > kMaxTokenBytes)
      return InvalidArgument("token must be " + std::to_string(kMinTokenBytes) + ".." + std::to_string(kMaxTokenBytes) +
                             " bytes long");
    t.digest = Sha256(value);
  } else {
    if (!hex->is_string()) return InvalidArgument("sha256 must be a string");
    SERVING_ASSIGN_OR_RETURN(auto d, ParseHexDigest(hex->get<std::string>()));
    t.digest = d;
  }
  auto scopes = entry.find("scopes");
  if (scopes == entry.end() || !scopes->is_array() || scopes->empty())
    return InvalidArgument("needs \"scopes\", a non-empty list");
  for (const auto& s : *scopes) {
    if (!s.is_string()) return InvalidArgument("scopes must be strings");
    SERVING_ASSIGN_OR_RETURN(auto scope, ParseScope(s.get<std::string>()));
    t.scopes |= static_cast<uint32_t>(scope);
  }
  if (auto expires = entry.find("expires"); expires != entry.end()) {
    if (!expires->is_string()) return InvalidArgument("expires must be a string");
    SERVING_ASSIGN_OR_RETURN(auto when, ParseTime(expires->get<std::string>()));
    t.expires = when;
  }
  for (const auto& [key, _] : entry.items())
    if (key != "name" && key != "token" && key != "sha256" && key != "scopes" && key != "expires")
      return InvalidArgument("has an unknown field " + Quote(key));
  return t;
}

}  // namespace

const char* ScopeName(Scope scope) {
  switch (scope) {
    case Scope::kInfer: return "infer";
    case Scope::kMetadata: return "metadata";
    case Scope::kStatistics: return "statistics";
    case Scope::kModelControl: return "model-control";
    case Scope::kHealth: return "health";
    case Scope::kMetrics: return "metrics";
  }
  return "?";
}

Digest Sha256(std::string_view data) {
  Digest d{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), d.data(), &len, EVP_sha256(), nullptr);
  return d;
}

const Token* TokenSet::Find(std::string_view presented) const {
  const Digest digest = Sha256(presented);
  const Token* found = nullptr;
  for (const auto& t : tokens_) {
    const bool same = CRYPTO_memcmp(t.digest.data(), digest.data(), digest.size()) == 0;
    if (same && found == nullptr) found = &t;
  }
  return found;
}

StatusOr<TokenSet> ParseTokens(std::string_view text) {
  if (text.size() > kMaxTokensFileBytes)
    return InvalidArgument("the tokens file is over " + std::to_string(kMaxTokensFileBytes) + " bytes");
  bool too_deep = false;
  // The parser builds nothing below the file's own depth, so a nested bomb costs no memory.
  const json::parser_callback_t limit = [&too_deep](int depth, json::parse_event_t, json&) {
    if (depth > kMaxDepth) too_deep = true;
    return depth <= kMaxDepth;
  };
  json doc = json::parse(text.begin(), text.end(), limit, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return InvalidArgument("the tokens file is not valid JSON");
  if (too_deep) return InvalidArgument("the tokens file nests deeper than " + std::to_string(kMaxDepth) + " levels");
  auto list = doc.is_object() ? doc.find("tokens") : doc.end();
  if (list == doc.end() || !list->is_array())
    return InvalidArgument("the tokens file must be an object with a \"tokens\" list");
  if (list->size() > kMaxTokens)
    return InvalidArgument("the tokens file has more than " + std::to_string(kMaxTokens) + " tokens");
  std::vector<Token> tokens;
  for (size_t i = 0; i < list->size(); ++i) {
    auto t = ParseToken((*list)[i]);
    if (!t.ok()) return InvalidArgument("token " + std::to_string(i) + ": " + t.status().message());
    for (const auto& other : tokens)
      if (other.name == t->name)
        return InvalidArgument("token " + std::to_string(i) + ": name " + Quote(t->name) + " is used twice");
    tokens.push_back(std::move(t).value());
  }
  return TokenSet(std::move(tokens));
}

StatusOr<TokenSet> LoadTokensFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument("cannot read the tokens file " + Quote(path));
  std::string text(kMaxTokensFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  auto tokens = ParseTokens(text);
  if (!tokens.ok()) return InvalidArgument(path + ": " + tokens.status().message());
  return tokens;
}

}  // namespace serving::auth
