// A minimal S3 client over libcurl: ListObjectsV2, HEAD and GET (into memory or streamed to a file), each
// signed with AWS Signature Version 4 by libcurl itself (CURLOPT_AWS_SIGV4). Replies are bounded (listings and
// error documents at kMaxReplyBytes, objects at the caller's limit, enforced while they stream in) and an
// object is never buffered whole in memory on its way to disk.
//
// Status of a refusal: NOT_FOUND (404, NoSuchKey/NoSuchBucket), PERMISSION_DENIED (401/403: wrong credentials,
// SignatureDoesNotMatch, AccessDenied), UNAVAILABLE (no connection, a timeout, 5xx), INVALID_ARGUMENT (a reply
// that is not S3's, an object over its bound). Messages name the repository URL, the bucket and S3's error
// code; never a credential.
//
// Threading: one request at a time per Client (the repository's operation lock provides it).
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "sources/s3/s3_location.h"
#include "sources/s3/s3_xml.h"

namespace serving::s3 {

class Client {
 public:
  struct Options {
    Location location;
    Credentials credentials;
    std::string ca_file;  // PEM bundle to verify the store's certificate with ("" system's)
    std::chrono::seconds connect_timeout{10};
    std::chrono::seconds timeout{300};  // one whole request (a large download included)
  };
  explicit Client(Options options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const Location& location() const { return options_.location; }
  struct Reply;  // one request's reply as libcurl's callbacks fill it in
  // One page of the keys under `prefix` (a full key prefix), after `token`; with `delimiter` "/" the keys one
  // level down come back as common prefixes.
  StatusOr<ListPage> List(const std::string& prefix, const std::string& delimiter, const std::string& token);
  // HEAD: the object's ETag and size.
  StatusOr<Object> Head(const std::string& key);
  // GET into memory; INVALID_ARGUMENT past `max_bytes`.
  StatusOr<std::string> Get(const std::string& key, size_t max_bytes);
  // GET streamed into `file` (created or truncated); INVALID_ARGUMENT past `max_bytes`, the file then cut short.
  // Returns the bytes written.
  StatusOr<uint64_t> Download(const std::string& key, const std::filesystem::path& file, uint64_t max_bytes);

 private:
  // Runs one request; the reply's `sink` (optional) takes the body of a 2xx reply, returning false to abort.
  Status Perform(const std::string& method, const std::string& key, const std::string& query, Reply& reply);
  Status Refusal(const Reply& reply, const std::string& what) const;
  // A GET whose reply is kept in memory, refused past `max_bytes` (INVALID_ARGUMENT saying `over`); `what`
  // names the request in the store's refusals.
  StatusOr<std::string> GetBounded(const std::string& key, const std::string& query, size_t max_bytes,
                                   const std::string& what, const std::string& over);

  Options options_;
  void* curl_;  // CURL*, reused so the connection is kept alive between requests
};

}  // namespace serving::s3
