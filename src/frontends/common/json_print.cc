#include "frontends/common/json_print.h"

#include <google/protobuf/util/json_util.h>

#include "frontends/common/json_limits.h"
#include "google/rpc/status.pb.h"

namespace serving::frontends {

std::string ProtoToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);  // cannot fail for our messages
  return out;
}

Status ProtoFromJson(std::string_view json, google::protobuf::Message* message, int max_depth) {
  SERVING_RETURN_IF_ERROR(CheckJsonBody(json, max_depth));
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status = google::protobuf::util::JsonStringToMessage(json, message, options);
  // protobuf's message quotes the body around the error: client input, so made valid UTF-8 and bounded.
  if (!status.ok()) return InvalidArgument("invalid JSON body: " + Excerpt(std::string(status.message()), 512));
  return Status::Ok();
}

std::string StatusToJson(const Status& status) {
  google::rpc::Status s;
  s.set_code(static_cast<int>(status.code()));
  s.set_message(status.message());
  return ProtoToJson(s);
}

}  // namespace serving::frontends
