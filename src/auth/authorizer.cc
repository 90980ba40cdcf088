#include "auth/authorizer.h"

#include <openssl/crypto.h>
#include <strings.h>

#include "observability/logger.h"

namespace serving::auth {
namespace {

// Triton's category of each of ours (Triton has none for /metrics).
const char* TritonCategory(Category category) {
  switch (category) {
    case Category::kHealth: return "health";
    case Category::kMetadata: return "metadata";
    case Category::kModelConfig: return "model-config";
    case Category::kInference: return "inference";
    case Category::kStatistics: return "statistics";
    case Category::kRepositoryIndex:
    case Category::kModelControl: return "model-repository";
    case Category::kMetrics: return nullptr;
  }
  return nullptr;
}

bool SameSecret(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// The token of an "Authorization: Bearer <token>" value; empty when the value is not of that form.
std::string_view BearerToken(std::string_view value) {
  // Surrounding white space is not part of the value (HTTP's OWS; gRPC clients such as perf_analyzer's -H send a
  // leading space).
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  constexpr std::string_view kScheme = "bearer ";
  if (value.size() <= kScheme.size() || strncasecmp(value.data(), kScheme.data(), kScheme.size()) != 0) return {};
  value.remove_prefix(kScheme.size());
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (value.find_first_of(" \t") != std::string_view::npos) return {};
  return value;
}

std::string FormatTime(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

const char* CategoryName(Category category) {
  switch (category) {
    case Category::kHealth: return "health";
    case Category::kMetadata: return "metadata";
    case Category::kModelConfig: return "model-config";
    case Category::kInference: return "inference";
    case Category::kStatistics: return "statistics";
    case Category::kRepositoryIndex: return "repository-index";
    case Category::kModelControl: return "model-control";
    case Category::kMetrics: return "metrics";
  }
  return "?";
}

StatusOr<std::set<Category>> ParseCategories(std::string_view list) {
  std::set<Category> out;
  if (list == "none") return out;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view name = list.substr(0, comma);
    bool known = false;
    for (Category c : {Category::kHealth, Category::kMetadata, Category::kModelConfig, Category::kInference,
                       Category::kStatistics, Category::kRepositoryIndex, Category::kModelControl, Category::kMetrics})
      if (name == CategoryName(c)) {
        out.insert(c);
        known = true;
      }
    if (!known) return InvalidArgument("unknown category " + Quote(name));
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

Scope ScopeFor(Category category) {
  switch (category) {
    case Category::kHealth: return Scope::kHealth;
    case Category::kMetadata:
    case Category::kModelConfig:
    case Category::kRepositoryIndex: return Scope::kMetadata;
    case Category::kInference: return Scope::kInfer;
    case Category::kStatistics: return Scope::kStatistics;
    case Category::kModelControl: return Scope::kModelControl;
    case Category::kMetrics: return Scope::kMetrics;
  }
  return Scope::kModelControl;
}

StatusOr<std::unique_ptr<Authorizer>> Authorizer::Create(Options options, SecurityMetrics* metrics) {
  std::shared_ptr<const TokenSet> tokens;
  if (!options.tokens_file.empty()) {
    SERVING_ASSIGN_OR_RETURN(TokenSet loaded, LoadTokensFile(options.tokens_file));
    tokens = std::make_shared<const TokenSet>(std::move(loaded));
    logging::Info("bearer tokens loaded", {{"file", options.tokens_file}, {"tokens", tokens->size()}});
  }
  return std::unique_ptr<Authorizer>(new Authorizer(std::move(options), metrics, std::move(tokens)));
}

Authorizer::Authorizer(Options options, SecurityMetrics* metrics, std::shared_ptr<const TokenSet> tokens)
    : options_(std::move(options)),
      metrics_(metrics),
      enabled_(tokens != nullptr || !options_.restricted.empty()),
      tokens_(std::move(tokens)) {}

Authorizer::~Authorizer() { StopReloading(); }

bool Authorizer::NeedsToken(Category category) const {
  MutexLock lock(tokens_mu_);
  return tokens_ != nullptr && options_.open.count(category) == 0;
}

Decision Authorizer::Authorize(const RequestContext& context) const {
  if (!enabled_) return {};
  if (const char* triton = TritonCategory(context.category)) {
    if (const RestrictedRule* rule = options_.restricted.Find(context.transport, triton);
        rule && !SameSecret(context.header(rule->header), rule->value))
      return Refuse(context,
                    Status(StatusCode::kPermissionDenied,
                           "This API is restricted, expecting header '" + rule->header + "' with its configured value"),
                    "restricted", "", "");
  }
  if (options_.open.count(context.category)) return {};
  return CheckToken(context);
}

Decision Authorizer::CheckToken(const RequestContext& context) const {
  std::shared_ptr<const TokenSet> tokens;
  {
    MutexLock lock(tokens_mu_);
    tokens = tokens_;
  }
  if (!tokens) return {};
  constexpr const char* kChallenge = "Bearer realm=\"inference\"";
  const std::string header = context.header("authorization");
  if (header.empty())
    return Refuse(
        context,
        Status(StatusCode::kUnauthenticated, "this server requires a bearer token: Authorization: Bearer <token>"),
        "missing", "", kChallenge);
  const std::string_view presented = BearerToken(header);
  if (presented.empty() || presented.size() > kMaxTokenBytes)
    return Refuse(context,
                  Status(StatusCode::kUnauthenticated, "the Authorization header is not of the form 'Bearer <token>'"),
                  "malformed", "", std::string(kChallenge) + ", error=\"invalid_request\"");
  const Token* token = tokens->Find(presented);
  if (!token)
    return Refuse(context, Status(StatusCode::kUnauthenticated, "the bearer token is not valid"), "invalid", "",
                  std::string(kChallenge) + ", error=\"invalid_token\"");
  if (token->expires && *token->expires <= std::chrono::system_clock::now())
    return Refuse(context,
                  Status(StatusCode::kUnauthenticated, "the bearer token expired at " + FormatTime(*token->expires)),
                  "expired", token->name, std::string(kChallenge) + ", error=\"invalid_token\"");
  const Scope needed = ScopeFor(context.category);
  if (!token->Has(needed))
    return Refuse(
        context,
        Status(StatusCode::kPermissionDenied, "the token '" + token->name + "' lacks the scope '" + ScopeName(needed) +
                                                  "' that " + std::string(context.operation) + " needs"),
        "scope", token->name,
        std::string(kChallenge) + R"(, error="insufficient_scope", scope=")" + ScopeName(needed) + "\"");
  return Decision{Status::Ok(), token->name, ""};
}

Decision Authorizer::Refuse(const RequestContext& context, Status status, const char* reason, std::string principal,
                            std::string challenge) const {
  if (metrics_) metrics_->CountAuthFailure(TransportName(context.transport), reason);
  logging::Warn("request refused by authorization",
                {{"transport", TransportName(context.transport)},
                 {"operation", std::string(context.operation)},
                 {"category", CategoryName(context.category)},
                 {"reason", reason},
                 {"principal", principal},
                 {"peer", context.peer.empty() && context.lazy_peer ? context.lazy_peer() : std::string(context.peer)},
                 {"tls_identity", std::string(context.tls_identity)}});
  return Decision{std::move(status), std::move(principal), std::move(challenge)};
}

void Authorizer::StartReloading() {
  if (options_.tokens_file.empty() || watcher_) return;
  watcher_ = std::make_unique<FileWatcher>(std::vector<std::string>{options_.tokens_file}, options_.reload_interval,
                                           [this] { Reload(); });
}

void Authorizer::StopReloading() { watcher_.reset(); }

void Authorizer::Reload() {
  auto loaded = LoadTokensFile(options_.tokens_file);
  if (metrics_) metrics_->CountSecretReload("tokens", loaded.ok());
  if (!loaded.ok()) {
    logging::Error("tokens file not reloaded: the previous tokens stay in force",
                   {{"file", options_.tokens_file}, {"reason", loaded.status().message()}});
    return;
  }
  auto tokens = std::make_shared<const TokenSet>(std::move(loaded).value());
  logging::Info("bearer tokens reloaded", {{"file", options_.tokens_file}, {"tokens", tokens->size()}});
  MutexLock lock(tokens_mu_);
  tokens_ = std::move(tokens);
}

}  // namespace serving::auth
