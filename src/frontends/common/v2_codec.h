// KServe v2 (Open Inference Protocol) messages <-> the core. The protobuf messages are the canonical
// form: the gRPC service uses them directly, and the REST routes print metadata and the repository
// index from them, so both protocols describe models identically.
#pragma once

#include "core/inference_server.h"
#include "kserve/v2/grpc_predict_v2.pb.h"

namespace serving::frontends {

// Fills `request` (id, model, version, inputs, requested outputs) from `in`. Tensors borrow from `in`
// (raw_input_contents or typed contents): `in` must outlive the request.
Status DecodeV2Request(const inference::ModelInferRequest& in, InferRequest& request);
void EncodeV2Response(const InferResponse& response, inference::ModelInferResponse* out);

// Metadata of `name` (version empty: newest ready). NOT_FOUND/UNAVAILABLE as InferenceServer::Describe.
Status ModelMetadataV2(const InferenceServer& server, const std::string& name, const std::string& version,
                       inference::ModelMetadataResponse* out);
// Triton's model configuration extension: the config.pbtxt the version was loaded with, completed from the
// model file (inputs/outputs, instance groups, platform and backend).
Status ModelConfigV2(const InferenceServer& server, const std::string& name, const std::string& version,
                     inference::ModelConfigResponse* out);
// Triton's statistics extension: `name` empty for every model, `version` empty for every ready version.
Status ModelStatisticsV2(const InferenceServer& server, const std::string& name, const std::string& version,
                         inference::ModelStatisticsResponse* out);
// Triton's repository extension: explicit load/unload. `parameters` are the request's parameter names.
// Asynchronous: `done` runs once with the outcome, on the core's control thread or (refused at once) here.
void ModelControlV2(InferenceServer& server, bool load, const std::string& repository, const std::string& model,
                    const std::vector<std::string>& parameters, const InferenceServer::ControlCallback& done);
void RepositoryIndexV2(const InferenceServer& server, bool ready_only, inference::RepositoryIndexResponse* out);
void ServerMetadataV2(inference::ServerMetadataResponse* out);

}  // namespace serving::frontends
