// KServe v2 REST bodies: the canonical JSON tensor form plus the binary tensor data extension that
// tritonclient uses by default (a JSON header of `Inference-Header-Content-Length` bytes followed by
// raw tensor bytes, for inputs with a `binary_data_size` parameter and outputs asked for as binary).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/infer_request.h"
#include "kserve/v2/grpc_predict_v2.pb.h"

namespace serving::frontends {

struct V2HttpInfer {
  InferRequest request;
  bool binary_by_default = false;      // request parameter binary_data_output
  std::map<std::string, bool> binary;  // per requested output: parameters.binary_data
};

// `header_length`: the Inference-Header-Content-Length value, or nullopt when the body is all JSON.
// Binary inputs borrow from `body`, which must outlive the request. `readable`: how many bytes from
// body.data() may be read (a buffer's capacity); with 64 to spare past the JSON the parser reads it in
// place, otherwise it parses a padded copy.
StatusOr<V2HttpInfer> ParseV2InferBody(std::string_view body, std::optional<size_t> header_length, size_t readable = 0);

struct V2HttpBody {
  std::string bytes;
  std::optional<size_t> header_length;  // set when binary output data follows the JSON
};
V2HttpBody EncodeV2InferResponse(const InferResponse& response, const V2HttpInfer& request);
// A request as v2 REST's JSON request form, every input's data as a JSON array (what payload logging sends).
std::string EncodeV2InferRequestJson(const InferRequest& request);

std::string ErrorJson(const std::string& message);
std::string MetadataJson(const inference::ModelMetadataResponse& metadata);
std::string ServerMetadataJson(const inference::ServerMetadataResponse& metadata);
// Triton's JSON forms of a model configuration and of model statistics: proto field names, every field
// printed, 64-bit integers as numbers (protobuf's JSON mapping quotes them; Triton's clients read numbers).
std::string ModelConfigJson(const inference::ModelConfigResponse& config);
std::string ModelStatisticsJson(const inference::ModelStatisticsResponse& stats);
std::string RepositoryIndexJson(const inference::RepositoryIndexResponse& index);

}  // namespace serving::frontends
