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
  // after `timeout`, or once the moment GiveUpAfter set has passed.
  std::string Post(const std::string& url, const std::vector<std::string>& headers, std::string_view body,
                   std::chrono::milliseconds timeout);
  // From any thread (the one stopping the sender): a POST in flight, or a later one, is abandoned `grace` from
  // now (checked about once a second while waiting), so a stalled peer cannot hold a stopping server.
  void GiveUpAfter(std::chrono::steady_clock::duration grace);

 private:
  void* curl_ = nullptr;
  std::atomic<int64_t> give_up_at_{INT64_MAX};  // steady clock nanoseconds
};

// A URL as it may be logged: without the user:password@ it may carry.
std::string RedactedUrl(const std::string& url);

}  // namespace serving
