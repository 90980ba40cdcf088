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

// Fills `request`'s inputs from `in`'s rows, for the resolved model version `model`.
Status DecodeV1Rows(const inference::v1::InferRequest& in, const ModelView& model, InferRequest& request);
void EncodeV1Response(const InferResponse& response, inference::v1::InferResponse* out);

// One v1 call: the message, read by the transport's `parse` (proto3 JSON, a gRPC buffer), the reply, and
// the reply in the transport's own form where it keeps one (JSON text).
struct V1Call {
  inference::v1::InferRequest in;
  inference::v1::InferResponse out;
  std::string wire;
};

// Runs one v1 inference: `read` fills call->in (a failure is counted as the request's outcome), then the
// core decodes its rows and infers; on success `out` is filled and `write` puts it into the transport's form
// (timed as the output conversion), then `send` runs with the outcome (on any thread). `request` carries the
// transport's fields (protocol, trace id, receive time, deadline, cancellation).
void RunV1Infer(InferenceServer& server, InferRequest request, std::shared_ptr<V1Call> call,
                const std::function<Status(inference::v1::InferRequest*)>& read, std::function<void(V1Call&)> write,
                std::function<void(V1Call&, const Status&)> send);

void ListModelsV1(const InferenceServer& server, inference::v1::ListModelsResponse* out);

}  // namespace serving::frontends
