// The seed's inference.v1 API on top of the core: shared by the gRPC service and the REST routes, so
// both answer identically. Rows of features become one [rows, features] tensor for the model's single
// input; every output becomes per-row values, plus the label and scores for classifiers.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/inference_server.h"
#include "inference/v1/inference.pb.h"

namespace serving::frontends {

struct CallContext {
  std::string protocol;  // "grpc-v1", "http-v1", ...
  std::string trace_id;  // from traceparent; generated when empty
  Clock::time_point deadline = Clock::time_point::max();
  std::shared_ptr<const std::atomic<bool>> cancelled;  // see InferRequest::cancelled
};

// Decodes `in` for the given (already resolved) model version.
StatusOr<InferRequest> DecodeV1Request(const inference::v1::InferRequest& in, const ModelVersion& version);
void EncodeV1Response(const InferResponse& response, inference::v1::InferResponse* out);

// Runs one v1 inference: decode, infer, encode into `*out`, then `done` (on any thread). `in` and `out`
// must stay valid until `done` runs.
void RunV1Infer(InferenceServer& server, const inference::v1::InferRequest& in, CallContext ctx,
                inference::v1::InferResponse* out, std::function<void(const Status&)> done);

void ListModelsV1(const InferenceServer& server, inference::v1::ListModelsResponse* out);

}  // namespace serving::frontends
