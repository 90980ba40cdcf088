// Triton's restricted APIs, with Triton's flag syntax: `--http-restricted-api=<apis>:<key>=<value>` and
// `--grpc-restricted-protocol=<protocols>:<key>=<value>`, where <apis> is a comma-separated list of
// Triton's categories (health, metadata, inference, shared-memory, model-config, model-repository,
// statistics, trace, logging). A request to a restricted category must carry header <key> (over gRPC:
// metadata `triton-grpc-protocol-<key>`, as Triton names it) with exactly <value>.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace serving::auth {

enum class Transport { kHttp, kGrpc };
const char* TransportName(Transport transport);

struct RestrictedRule {
  std::string header;  // lower case, as looked up (gRPC: with Triton's "triton-grpc-protocol-" prefix)
  std::string value;
};

class RestrictedApi {
 public:
  // Adds one flag's rules; INVALID_ARGUMENT for a malformed value, an unknown category, or a category
  // already restricted on that transport (as Triton refuses it).
  Status Add(Transport transport, std::string_view flag_value);
  // The rule for a Triton category name on a transport, or null.
  const RestrictedRule* Find(Transport transport, std::string_view triton_category) const;
  bool empty() const { return rules_.empty(); }

 private:
  std::map<std::pair<Transport, std::string>, RestrictedRule> rules_;
};

}  // namespace serving::auth
