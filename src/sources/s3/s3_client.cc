#include "sources/s3/s3_client.h"

#include <curl/curl.h>

#include <cstdio>
#include <functional>
#include <mutex>

namespace serving::s3 {

struct Client::Reply {
  long http = 0;
  std::string error_body;                         // a non-2xx reply's body, bounded
  std::function<bool(const char*, size_t)> sink;  // a 2xx reply's body
  bool aborted = false;                           // the sink refused more
  std::string etag;
  uint64_t content_length = 0;
};

namespace {

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* reply = static_cast<Client::Reply*>(user);
  const size_t bytes = size * n;
  if (reply->http >= 200 && reply->http < 300) {
    if (reply->sink && !reply->sink(data, bytes)) {
      reply->aborted = true;
      return 0;  // libcurl stops with CURLE_WRITE_ERROR
    }
    return bytes;
  }
  const size_t room = kMaxReplyBytes - std::min(kMaxReplyBytes, reply->error_body.size());
  reply->error_body.append(data, std::min(room, bytes));
  return bytes;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* reply = static_cast<Client::Reply*>(user);
  const std::string_view line(data, size * n);
  // The status line comes first: what follows is routed by it.
  if (line.rfind("HTTP/", 0) == 0) {
    const size_t sp = line.find(' ');
    if (sp != std::string_view::npos)
      reply->http = std::strtol(std::string(line.substr(sp + 1, 3)).c_str(), nullptr, 10);
    return size * n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  std::string name(line.substr(0, colon));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
    value.remove_suffix(1);
  if (name == "etag") reply->etag = std::string(value.substr(0, 256));
  if (name == "content-length")
    reply->content_length = std::strtoull(std::string(value.substr(0, 20)).c_str(), nullptr, 10);
  return size * n;
}

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

Client::Client(Options options) : options_(std::move(options)) {
  GlobalInit();
  curl_ = curl_easy_init();
}

Client::~Client() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

Status Client::Perform(const std::string& method, const std::string& key, const std::string& query, Reply& reply) {
  CURL* curl = static_cast<CURL*>(curl_);
  if (!curl) return Unavailable("cannot start an HTTP client for " + options_.location.url);
  curl_easy_reset(curl);
  std::string url = options_.location.ObjectUrl(UriEncode(key, /*keep_slash=*/true));
  if (!query.empty()) url += "?" + query;
  const Credentials& c = options_.credentials;
  const std::string sigv4 = "aws:amz:" + c.region + ":s3";
  const std::string userpwd = c.access_key + ":" + c.secret_key;
  curl_slist* headers = nullptr;
  // S3 wants the payload's hash signed too; an empty body's.
  headers = curl_slist_append(headers,
                              "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  if (!c.session_token.empty())
    headers = curl_slist_append(headers, ("x-amz-security-token: " + c.session_token).c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  if (!c.access_key.empty()) {
    curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, sigv4.c_str());
    curl_easy_setopt(curl, CURLOPT_USERPWD, userpwd.c_str());
  }
  if (method == "HEAD") curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &reply);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);  // keys are sent as they are, never squashed
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, static_cast<long>(options_.timeout.count()));
  if (!options_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options_.ca_file.c_str());
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  const CURLcode rc = curl_easy_perform(curl);
  curl_slist_free_all(headers);
  if (rc == CURLE_WRITE_ERROR && reply.aborted) return Status::Ok();  // the caller's sink said why
  if (rc != CURLE_OK)
    return Unavailable("cannot reach the store of " + options_.location.url + " (" + options_.location.endpoint +
                       "): " + curl_easy_strerror(rc));
  return Status::Ok();
}

Status Client::Refusal(const Reply& reply, const std::string& what) const {
  const ErrorReply e = ParseErrorReply(reply.error_body);
  const std::string detail = "bucket '" + options_.location.bucket + "', " + what + ": HTTP " +
                             std::to_string(reply.http) + (e.code.empty() ? "" : " " + e.code) +
                             (e.message.empty() ? "" : " (" + e.message + ")");
  const std::string msg = "model repository " + options_.location.url + ": " + detail;
  if (reply.http == 404) return NotFound(msg);
  if (reply.http == 401 || reply.http == 403) return Status(StatusCode::kPermissionDenied, msg);
  if (reply.http >= 500 || reply.http == 429) return Unavailable(msg);
  return InvalidArgument(msg);
}

StatusOr<ListPage> Client::List(const std::string& prefix, const std::string& delimiter, const std::string& token) {
  // Parameters in SigV4's canonical (sorted) order.
  std::string query;
  if (!token.empty()) query += "continuation-token=" + UriEncode(token, false) + "&";
  if (!delimiter.empty()) query += "delimiter=" + UriEncode(delimiter, false) + "&";
  query += "list-type=2&max-keys=1000&prefix=" + UriEncode(prefix, false);
  SERVING_ASSIGN_OR_RETURN(const std::string body, GetBounded("", query, kMaxReplyBytes, "listing '" + prefix + "'",
                                                              "a listing page over 8 MiB"));
  auto page = ParseListPage(body);
  if (!page.ok()) return InvalidArgument("model repository " + options_.location.url + ": " + page.status().message());
  return page;
}

StatusOr<Object> Client::Head(const std::string& key) {
  Reply reply;
  SERVING_RETURN_IF_ERROR(Perform("HEAD", key, "", reply));
  if (reply.http < 200 || reply.http >= 300) return Refusal(reply, "'" + key + "'");
  return Object{key, reply.etag, reply.content_length};
}

StatusOr<std::string> Client::Get(const std::string& key, size_t max_bytes) {
  return GetBounded(key, "", max_bytes, "'" + key + "'",
                    "'" + key + "' is over " + std::to_string(max_bytes) + " bytes");
}

StatusOr<std::string> Client::GetBounded(const std::string& key, const std::string& query, size_t max_bytes,
                                         const std::string& what, const std::string& over) {
  Reply reply;
  std::string body;
  reply.sink = [&body, max_bytes](const char* data, size_t n) {
    if (body.size() + n > max_bytes) return false;
    body.append(data, n);
    return true;
  };
  SERVING_RETURN_IF_ERROR(Perform("GET", key, query, reply));
  if (reply.http < 200 || reply.http >= 300) return Refusal(reply, what);
  if (reply.aborted) return InvalidArgument("model repository " + options_.location.url + ": " + over);
  return body;
}

StatusOr<uint64_t> Client::Download(const std::string& key, const std::filesystem::path& file, uint64_t max_bytes) {
  std::unique_ptr<FILE, int (*)(FILE*)> out(std::fopen(file.c_str(), "wb"), &std::fclose);
  if (!out) return Unavailable("cannot write " + file.string());
  Reply reply;
  uint64_t written = 0;
  bool write_failed = false;
  reply.sink = [&](const char* data, size_t n) {
    if (written + n > max_bytes) return false;
    if (std::fwrite(data, 1, n, out.get()) != n) {
      write_failed = true;
      return false;
    }
    written += n;
    return true;
  };
  SERVING_RETURN_IF_ERROR(Perform("GET", key, "", reply));
  if (reply.http < 200 || reply.http >= 300) return Refusal(reply, "'" + key + "'");
  if (write_failed || std::fflush(out.get()) != 0)
    return Unavailable("cannot write " + file.string() + " (disk full?)");
  if (reply.aborted)
    return InvalidArgument("model repository " + options_.location.url + ": '" + key + "' is over " +
                           std::to_string(max_bytes) + " bytes (--repository-max-file-bytes)");
  return written;
}

}  // namespace serving::s3
