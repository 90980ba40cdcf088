// The one request and response type every frontend translates to and from. Frontends decode their wire
// format into an InferRequest, hand it to InferenceServer::Infer, and encode the InferResponse (or the
// Status) that the callback receives.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/model_settings.h"
#include "core/status.h"
#include "core/tensor.h"

namespace serving {

using Clock = std::chrono::steady_clock;

// W3C trace context (www.w3.org/TR/trace-context): what the transport read from `traceparent` and `tracestate`,
// completed by the core as the request enters it.
struct TraceContext {
  std::string trace_id;         // 32 lowercase hex chars; made by the core when none came
  std::string parent_span_id;   // the caller's span (16 lowercase hex); empty when no valid traceparent came
  bool parent_sampled = false;  // the caller's sampled flag
  std::string tracestate;       // as received (at most 512 bytes), kept only with a parent
  std::string span_id;          // the server's own span for this request (16 lowercase hex); set by the core
};

struct InferRequest {
  std::string id;       // generated when empty
  std::string model;    // the default model when empty
  std::string version;  // the newest ready version when empty
  std::vector<Tensor> inputs;
  std::vector<std::string> requested_outputs;  // empty: every output
  std::string protocol;                        // "grpc-v1", "http-v2", ... for logs and metrics
  TraceContext trace;
  // Who asked, for the access log: the authorized token's name (empty when none was needed) and the
  // verified TLS client certificate's subject (empty without one).
  std::string principal;
  std::string tls_identity;
  Clock::time_point received = Clock::now();
  // Set by the core as the request goes (observers read them): parsing and decoding, from `received`; the wait
  // in the scheduler's queue, until its batch started.
  Clock::duration decode_time{};
  Clock::duration queue_time{};
  // The bytes of its input tensors, set by the core once decoded; of its outputs, once answered.
  uint64_t input_bytes = 0;
  uint64_t output_bytes = 0;
  Clock::time_point deadline = Clock::time_point::max();
  // Triton's schedule policy parameters (v2 `parameters`): the priority level (1 the highest; 0 the model's
  // default) and a queue timeout in microseconds (0: the queue policy's), used with dynamic_batching.
  uint64_t priority = 0;
  uint64_t timeout_us = 0;
  // Set by the frontend when the client goes away (HTTP connection closed, gRPC call cancelled); a request
  // still queued then fails with CANCELLED instead of running. Null: the frontend cannot tell.
  std::shared_ptr<const std::atomic<bool>> cancelled;
};

struct InferResponse {
  std::string id;
  std::string model;
  int64_t version = 0;
  std::vector<Tensor> outputs;
  std::shared_ptr<const ModelSettings> config;  // labels, feature names, scores output
};

// Called exactly once per request, on whichever thread finished it. Borrowed input tensors (see Tensor)
// must stay valid until it is called.
using InferCallback = std::function<void(StatusOr<InferResponse>)>;

}  // namespace serving
