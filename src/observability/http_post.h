// One HTTP POST client for the observers that send what they saw elsewhere (payload logging's sink, tracing's
// OTLP/HTTP collector): a libcurl handle owned by one sender thread, which keeps its connection alive between
// posts. Not thread-safe: each sender thread has its own.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace serving {

class HttpPoster final {
 public:
  HttpPoster();
  ~HttpPoster();
  HttpPoster(const HttpPoster&) = delete;
  HttpPoster& operator=(const HttpPoster&) = delete;

  // POSTs `body` to `url` (http or https only) with `headers` ("Name: value" each); "" when the server took
  // it (2xx), else why not ("HTTP 503", or libcurl's error). The reply's body is read and dropped. Gives up
  // after `timeout`, or once the steady clock passes `*give_up_at` (nanoseconds since its epoch; read about
  // once a second while waiting, so a stopping server is not held by a stalled peer).
  std::string Post(const std::string& url, const std::vector<std::string>& headers, std::string_view body,
                   std::chrono::milliseconds timeout, const std::atomic<int64_t>* give_up_at = nullptr);

  static int64_t Never() { return INT64_MAX; }

 private:
  void* curl_ = nullptr;
};

// A URL as it may be logged: without the user:password@ it may carry.
std::string RedactedUrl(const std::string& url);

}  // namespace serving
