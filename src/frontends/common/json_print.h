// The proto3 JSON mapping exactly as Envoy's grpc_json_transcoder is configured to apply it
// (deploy/k8s/base/inference/envoy.yaml: print_options), so /v1 answers the same bytes whether or not Envoy is in
// front.
#pragma once

#include <google/protobuf/message.h>

#include <string>
#include <string_view>

#include "core/status.h"

namespace serving::frontends {

// Print options: preserve_proto_field_names, always_print_primitive_fields, no whitespace.
std::string ProtoToJson(const google::protobuf::Message& message);
// Unknown fields are rejected (as Envoy does); errors are INVALID_ARGUMENT naming the problem. JSON nested
// deeper than `max_depth` (the message's own schema depth) is rejected before protobuf's parser sees it:
// that parser keeps state per level and flattens nested lists into repeated fields, so a few megabytes of
// `[[[[` cost it gigabytes.
Status ProtoFromJson(std::string_view json, google::protobuf::Message* message, int max_depth);
// The body Envoy's convert_grpc_status writes for a failed call: google.rpc.Status as JSON.
std::string StatusToJson(const Status& status);

}  // namespace serving::frontends
