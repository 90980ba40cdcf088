#include "sources/s3/s3_location.h"

#include <cstdlib>

namespace serving::s3 {
namespace {

std::string Get(const std::map<std::string, std::string>& env, const char* name) {
  auto it = env.find(name);
  return it == env.end() ? "" : it->second;
}

bool ValidBucket(std::string_view b) {
  if (b.size() < 3 || b.size() > 63) return false;
  for (char c : b)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_')) return false;
  return true;
}

bool ValidHost(std::string_view h) {
  if (h.empty() || h.size() > 255) return false;
  for (char c : h)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == ':' || c == '[' || c == ']'))
      return false;
  return true;
}

}  // namespace

std::string UriEncode(std::string_view s, bool keep_slash) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string Location::ObjectUrl(std::string_view encoded_key) const {
  if (path_style) return endpoint + "/" + bucket + "/" + std::string(encoded_key);
  const size_t host = endpoint.find("://") + 3;
  return endpoint.substr(0, host) + bucket + "." + endpoint.substr(host) + "/" + std::string(encoded_key);
}

StatusOr<Location> ParseLocation(std::string_view url, const std::map<std::string, std::string>& env,
                                 Addressing addressing) {
  Location loc;
  loc.url = std::string(url);
  const auto bad = [&](const std::string& why) {
    return InvalidArgument("model repository '" + std::string(url.substr(0, 256)) + "': " + why);
  };
  if (url.substr(0, 5) != "s3://") return bad("not an s3:// URL");
  std::string_view rest = url.substr(5);
  std::string scheme;
  for (const char* s : {"http://", "https://"}) {
    if (rest.substr(0, std::string_view(s).size()) == s) {
      scheme = std::string(s).substr(0, std::string_view(s).size() - 3);
      rest = rest.substr(std::string_view(s).size());
    }
  }
  // A first segment with a port (or a scheme given) is an endpoint; otherwise it is the bucket.
  const size_t slash = rest.find('/');
  const std::string_view first = rest.substr(0, slash);
  const bool has_endpoint = !scheme.empty() || first.find(':') != std::string_view::npos;
  if (has_endpoint) {
    if (!ValidHost(first)) return bad("'" + std::string(first.substr(0, 64)) + "' is not a host:port");
    loc.endpoint = (scheme.empty() ? "https" : scheme) + "://" + std::string(first);
    if (slash == std::string_view::npos) return bad("no bucket after the endpoint");
    rest = rest.substr(slash + 1);
  } else if (const std::string configured = Get(env, "AWS_ENDPOINT_URL"); !configured.empty()) {
    loc.endpoint = configured;
    while (!loc.endpoint.empty() && loc.endpoint.back() == '/') loc.endpoint.pop_back();
    if (loc.endpoint.rfind("http://", 0) != 0 && loc.endpoint.rfind("https://", 0) != 0)
      return bad("AWS_ENDPOINT_URL must start with http:// or https://");
  }
  const size_t bucket_end = rest.find('/');
  loc.bucket = std::string(rest.substr(0, bucket_end));
  if (!ValidBucket(loc.bucket)) return bad("'" + loc.bucket.substr(0, 64) + "' is not a bucket name");
  loc.prefix = bucket_end == std::string_view::npos ? "" : std::string(rest.substr(bucket_end + 1));
  while (!loc.prefix.empty() && loc.prefix.back() == '/') loc.prefix.pop_back();
  if (!loc.prefix.empty()) loc.prefix += '/';
  for (size_t at = 0; at < loc.prefix.size();) {
    const size_t end = loc.prefix.find('/', at);
    const std::string_view segment = std::string_view(loc.prefix).substr(at, end - at);
    if (segment.empty() || segment == "." || segment == "..") return bad("the prefix has an empty, . or .. segment");
    at = end + 1;
  }
  if (loc.prefix.find('\0') != std::string::npos) return bad("the prefix holds a NUL byte");
  const bool explicit_endpoint = !loc.endpoint.empty();
  if (!explicit_endpoint) loc.endpoint = "https://s3." + CredentialsFrom(env).region + ".amazonaws.com";
  loc.path_style = addressing == Addressing::kPath || (addressing == Addressing::kAuto && explicit_endpoint) ||
                   loc.bucket.find('.') != std::string::npos;
  return loc;
}

Credentials CredentialsFrom(const std::map<std::string, std::string>& env) {
  Credentials c;
  c.access_key = Get(env, "AWS_ACCESS_KEY_ID");
  c.secret_key = Get(env, "AWS_SECRET_ACCESS_KEY");
  c.session_token = Get(env, "AWS_SESSION_TOKEN");
  c.region = Get(env, "AWS_REGION");
  if (c.region.empty()) c.region = Get(env, "AWS_DEFAULT_REGION");
  if (c.region.empty()) c.region = "us-east-1";
  return c;
}

std::map<std::string, std::string> AwsEnvironment() {
  std::map<std::string, std::string> env;
  for (const char* name : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
                           "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_CA_BUNDLE"})
    if (const char* v = std::getenv(name)) env[name] = v;
  return env;
}

}  // namespace serving::s3
