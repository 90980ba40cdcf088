#include "observability/http_post.h"

#include <curl/curl.h>

#include <mutex>

namespace serving {
namespace {

size_t Discard(char*, size_t size, size_t count, void*) { return size * count; }

// libcurl's progress callback: non-zero aborts the transfer.
int GiveUp(void* give_up_at, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const int64_t now =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  return now > static_cast<const std::atomic<int64_t>*>(give_up_at)->load() ? 1 : 0;
}

}  // namespace

HttpPoster::HttpPoster() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  curl_ = curl_easy_init();
}

HttpPoster::~HttpPoster() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

void HttpPoster::GiveUpAfter(std::chrono::steady_clock::duration grace) {
  give_up_at_ = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    (std::chrono::steady_clock::now() + grace).time_since_epoch())
                    .count();
}

std::string HttpPoster::Post(const std::string& url, const std::vector<std::string>& headers, std::string_view body,
                             std::chrono::milliseconds timeout) {
  CURL* curl = static_cast<CURL*>(curl_);
  if (curl == nullptr) return "no curl handle";
  curl_easy_reset(curl);  // keeps the connection
  curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  list = curl_slist_append(list, "Expect:");  // no 100-continue round trip
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Discard);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, GiveUp);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &give_up_at_);
  const CURLcode rc = curl_easy_perform(curl);
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(list);
  if (rc != CURLE_OK) return curl_easy_strerror(rc);
  if (code < 200 || code > 299) return "HTTP " + std::to_string(code);
  return "";
}

std::string RedactedUrl(const std::string& url) {
  const size_t scheme = url.find("://");
  const size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  const size_t at = url.find('@', start);
  const size_t path = url.find('/', start);
  if (at == std::string::npos || (path != std::string::npos && at > path)) return url;
  return url.substr(0, start) + url.substr(at + 1);
}

}  // namespace serving
