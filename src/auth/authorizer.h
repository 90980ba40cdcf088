// Authorizer: the one decision every HTTP route and gRPC method passes before any work. The transports
// build a RequestContext (what the endpoint does, who is calling: peer, TLS client identity, headers) and
// act on the Decision; the policy itself (bearer tokens with scopes, Triton's restricted-API headers, which
// categories are open) lives here only, so no frontend carries policy of its own.
//
// Threading: Authorize() from any thread, concurrently; the tokens file is re-read by the authorizer's own
// thread (StartReloading) and swapped in whole, so a request sees either the old set or the new one.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "auth/file_watch.h"
#include "auth/restricted_api.h"
#include "auth/token_file.h"
#include "core/mutex.h"
#include "core/status.h"
#include "observability/security_metrics.h"

namespace serving::auth {

// What an endpoint does: Triton's restricted-API categories, with the repository index apart from model
// control (load/unload), so a token that may list models need not be able to unload them.
enum class Category {
  kHealth,           // liveness, readiness, model readiness
  kMetadata,         // server and model metadata, model lists, gRPC reflection
  kModelConfig,      // a model's configuration
  kInference,        // inference
  kStatistics,       // Triton's statistics extension
  kRepositoryIndex,  // the repository index
  kModelControl,     // repository load/unload
  kMetrics,          // /metrics
};
const char* CategoryName(Category category);
// "health,metrics" -> the set; "none" or "" -> empty; INVALID_ARGUMENT naming an unknown category.
StatusOr<std::set<Category>> ParseCategories(std::string_view list);
// The token scope a category needs: "health", "metadata", "infer", "statistics", "model-control", "metrics".
Scope ScopeFor(Category category);

// Header or metadata value by lower-case name; empty when absent.
using HeaderLookup = std::function<std::string(std::string_view lower_case_name)>;

struct RequestContext {
  Transport transport = Transport::kHttp;
  std::string_view operation;  // the route ("POST /v2/models/{model}/infer") or gRPC method, for logs
  Category category = Category::kInference;
  std::string_view peer;                   // the client's address, for logs; may be empty
  std::function<std::string()> lazy_peer;  // or how to get it, asked only for a refusal's log line
  std::string_view tls_identity;           // the verified client certificate's subject, empty without one
  HeaderLookup header;
};

struct Decision {
  Status status;          // OK, UNAUTHENTICATED or PERMISSION_DENIED, with a message naming the problem
  std::string principal;  // the token's name when one was presented and valid
  // For an HTTP refusal: the WWW-Authenticate header value (RFC 6750); empty when none is due.
  std::string challenge;
  bool ok() const { return status.ok(); }
};

class Authorizer {
 public:
  struct Options {
    std::string tokens_file;  // empty: no bearer tokens are required
    // Categories that need no token even when tokens are on (default: health and metrics, so probes and
    // scrapes keep working). Triton's restricted-API rules still apply to them.
    std::set<Category> open = {Category::kHealth, Category::kMetrics};
    RestrictedApi restricted;  // Triton's --http-restricted-api / --grpc-restricted-protocol rules
    std::chrono::milliseconds reload_interval{1000};
  };

  // Reads the tokens file (when given): a file that does not parse is an error naming the problem.
  static StatusOr<std::unique_ptr<Authorizer>> Create(Options options, SecurityMetrics* metrics);
  ~Authorizer();

  // Whether any policy is configured (tokens or restricted rules); when not, every request is allowed.
  bool enabled() const { return enabled_; }
  // Whether requests of `category` must present a bearer token (tokens are on and the category is not open).
  bool NeedsToken(Category category) const;
  // Counts and logs each refusal (without the token) itself, so a transport cannot forget to.
  Decision Authorize(const RequestContext& context) const;

  // Re-reads the tokens file whenever it changes (a Kubernetes Secret update swaps a symlink); a file that
  // does not parse keeps the previous tokens, logged and counted.
  void StartReloading();
  void StopReloading();

 private:
  Authorizer(Options options, SecurityMetrics* metrics, std::shared_ptr<const TokenSet> tokens);
  Decision Refuse(const RequestContext& context, Status status, const char* reason, std::string principal,
                  std::string challenge) const;
  Decision CheckToken(const RequestContext& context) const;
  void Reload();

  const Options options_;
  SecurityMetrics* const metrics_;
  const bool enabled_;
  mutable Mutex tokens_mu_;
  std::shared_ptr<const TokenSet> tokens_ GUARDED_BY(tokens_mu_);  // null without a tokens file
  std::unique_ptr<FileWatcher> watcher_;                           // while reloading
};

}  // namespace serving::auth
