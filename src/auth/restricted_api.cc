#include "auth/restricted_api.h"

#include <algorithm>
#include <cctype>

namespace serving::auth {
namespace {

constexpr const char* kTritonCategories[] = {"health",        "metadata",     "inference",
                                             "shared-memory", "model-config", "model-repository",
                                             "statistics",    "trace",        "logging"};
constexpr std::string_view kGrpcHeaderPrefix = "triton-grpc-protocol-";

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

bool ValidHeaderName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.';
  });
}

}  // namespace

const char* TransportName(Transport transport) { return transport == Transport::kHttp ? "http" : "grpc"; }

Status RestrictedApi::Add(Transport transport, std::string_view flag_value) {
  const std::string flag = transport == Transport::kHttp ? "--http-restricted-api" : "--grpc-restricted-protocol";
  const size_t colon = flag_value.find(':');
  const size_t eq = colon == std::string_view::npos ? colon : flag_value.find('=', colon);
  if (colon == std::string_view::npos || eq == std::string_view::npos)
    return InvalidArgument(flag + " must be <categories>:<key>=<value>, got " + Quote(flag_value));
  const std::string_view key = flag_value.substr(colon + 1, eq - colon - 1);
  const std::string_view value = flag_value.substr(eq + 1);
  if (!ValidHeaderName(key)) return InvalidArgument(flag + ": " + Quote(key) + " is not a header name");
  if (value.empty()) return InvalidArgument(flag + ": the value for " + Quote(key) + " is empty");
  RestrictedRule rule{Lower(key), std::string(value)};
  if (transport == Transport::kGrpc) rule.header = std::string(kGrpcHeaderPrefix) + rule.header;

  std::string_view categories = flag_value.substr(0, colon);
  while (true) {
    const size_t comma = categories.find(',');
    const std::string name = Lower(categories.substr(0, comma));
    if (std::find(std::begin(kTritonCategories), std::end(kTritonCategories), name) == std::end(kTritonCategories))
      return InvalidArgument(flag + ": unknown category " + Quote(name) +
                             " (health, metadata, inference, shared-memory, model-config, model-repository, "
                             "statistics, trace, logging)");
    if (!rules_.emplace(std::make_pair(transport, name), rule).second)
      return InvalidArgument(flag + ": category " + Quote(name) + " is restricted twice");
    if (comma == std::string_view::npos) break;
    categories.remove_prefix(comma + 1);
  }
  return Status::Ok();
}

const RestrictedRule* RestrictedApi::Find(Transport transport, std::string_view triton_category) const {
  auto it = rules_.find(std::make_pair(transport, std::string(triton_category)));
  return it == rules_.end() ? nullptr : &it->second;
}

}  // namespace serving::auth
