// Where an s3:// model repository lives and how to reach it: Triton's syntax for --model-repository and the
// standard AWS environment (docs/model-repository.md#object-storage).
//
//   s3://bucket/prefix                      AWS S3 (or AWS_ENDPOINT_URL when set), virtual-hosted addressing
//   s3://host:port/bucket/prefix            a private S3-compatible endpoint over HTTPS, path-style addressing
//   s3://http://host:port/bucket/prefix     the same with the scheme named (http or https)
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "core/status.h"

namespace serving::s3 {

// What the AWS variables say. Secrets stay out of Describe() and every log line.
struct Credentials {
  std::string access_key;     // AWS_ACCESS_KEY_ID
  std::string secret_key;     // AWS_SECRET_ACCESS_KEY
  std::string session_token;  // AWS_SESSION_TOKEN (temporary credentials)
  std::string region;         // AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1
};

struct Location {
  std::string url;       // as given, for log lines and errors
  std::string endpoint;  // scheme://host[:port], no trailing slash
  std::string bucket;
  std::string prefix;       // the repository's key prefix: "" or ending in '/'
  bool path_style = false;  // https://host/bucket/key rather than https://bucket.host/key

  // The URL of an object (`key` already percent-encoded) or, with an empty key, of the bucket.
  std::string ObjectUrl(std::string_view encoded_key) const;
};

enum class Addressing { kAuto, kPath, kVirtual };

// `env` holds the process's environment (a map, so tests need not set variables). INVALID_ARGUMENT names
// what is wrong with the URL. Addressing kAuto: path-style for an explicit endpoint, virtual-hosted for AWS.
StatusOr<Location> ParseLocation(std::string_view url, const std::map<std::string, std::string>& env,
                                 Addressing addressing = Addressing::kAuto);
Credentials CredentialsFrom(const std::map<std::string, std::string>& env);
// The AWS variables of this process's environment.
std::map<std::string, std::string> AwsEnvironment();

// RFC 3986 unreserved characters kept, everything else %XX; '/' kept unless `slash` is false (SigV4's rule for
// keys in a path and for query values).
std::string UriEncode(std::string_view s, bool keep_slash);

}  // namespace serving::s3
