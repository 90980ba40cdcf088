#include "frontends/http/v2_json.h"

#include <simdjson.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "frontends/common/json_limits.h"
#include "frontends/common/json_print.h"
#include "frontends/common/v2_contract.h"

namespace serving::frontends {
namespace {

using json = nlohmann::json;
// Responses keep the spec's field order (name, datatype, shape, data) for people reading them.
using ordered = nlohmann::ordered_json;

// The deepest a v2 body may nest: the body, `inputs`, an input and `data` take four levels, leaving room
// for `data` nested as deep as any tensor's rank. Checked before parsing (see CheckJsonBody).
constexpr int kMaxBodyNesting = 32;

namespace od = simdjson::ondemand;

std::string JsonError(simdjson::error_code e) { return simdjson::error_message(e); }

// Appends one JSON number (or bool) as `T` to `out`; range-checked, integers never pass through double and
// floats must be finite in `T` (1e39 is not an FP32).
template <typename T>
bool Put(od::value v, std::vector<std::byte>& out) {
  T t;
  if constexpr (std::is_same_v<T, bool>) {
    if (v.get_bool().get(t)) return false;
  } else if constexpr (std::is_integral_v<T>) {
    od::number n;
    if (v.get_number().get(n)) return false;
    if (n.is_uint64()) {
      if (n.get_uint64() > static_cast<uint64_t>(std::numeric_limits<T>::max())) return false;
      t = static_cast<T>(n.get_uint64());
    } else if (n.is_int64()) {
      const int64_t i = n.get_int64();
      if (i < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
          (i > 0 && static_cast<uint64_t>(i) > static_cast<uint64_t>(std::numeric_limits<T>::max())))
        return false;
      t = static_cast<T>(i);
    } else {
      return false;
    }
  } else {
    double d;
    if (v.get_double().get(d)) return false;
    const std::optional<T> f = FromDouble<T>(d);  // JSON numbers are finite: infinity here means out of range
    if (!f || !std::isfinite(ToDouble(*f))) return false;
    t = *f;
  }
  const size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &t, sizeof(T));
  return true;
}

// One element of `data`: a number or bool as the datatype's element type, a string for BYTES.
bool PutAs(DataType d, od::value v, std::vector<std::byte>& out) {
  if (d == DataType::kBytes) {
    std::string_view s;
    if (v.get_string().get(s)) return false;
    AppendBytesElement(out, s);
    return true;
  }
  return VisitDataType(d, [&](auto type) {
    using T = typename decltype(type)::type;
    if constexpr (std::is_void_v<T>) {
      return false;
    } else {
      return Put<T>(v, out);
    }
  });
}

// Reads `data` for a tensor of `dims`: either flat (the element count is checked against the shape by the
// core) or nested exactly as the shape (row-major), never deeper than the shape's rank and never ragged.
// Recursion is bounded by the rank, which CheckJsonBody bounds.
struct DataReader {
  DataType dtype;
  const Shape& dims;
  const std::string& where;
  std::string_view name;
  std::vector<std::byte> out;
  size_t count = 0;

  Status Element(od::value v) {
    if (!PutAs(dtype, v, out)) {
      return v2::NotAValid(name, count, v.raw_json_token(), dtype);
    }
    ++count;
    return Status::Ok();
  }

  // The elements of an array at nesting `level` (the outer `data` array is level 0).
  Status Array(od::array array, size_t level, bool nested) {
    size_t n = 0;
    for (auto element : array) {
      od::value v;
      if (auto e = element.get(v)) return InvalidArgument(where + ".data: " + JsonError(e));
      od::json_type type;
      if (auto e = v.type().get(type)) return InvalidArgument(where + ".data: " + JsonError(e));
      if (level == 0 && n == 0) nested = type == od::json_type::array;
      const bool inner = nested && level + 1 < dims.size();
      if (type == od::json_type::array) {
        if (!inner)
          return InvalidArgument(where + ".data nests deeper than the shape " + ShapeToString(dims) +
                                 (nested ? "" : " or mixes arrays with values"));
        od::array sub;
        if (auto e = v.get_array().get(sub)) return InvalidArgument(where + ".data: " + JsonError(e));
        SERVING_RETURN_IF_ERROR(Array(sub, level + 1, nested));
      } else {
        if (inner)
          return InvalidArgument(where + ".data is nested but not as deep as the shape " + ShapeToString(dims));
        SERVING_RETURN_IF_ERROR(Element(v));
      }
      ++n;
    }
    if (nested && level < dims.size() && static_cast<int64_t>(n) != dims[level])
      return InvalidArgument(where + ".data is ragged: an array at depth " + std::to_string(level + 1) + " has " +
                             std::to_string(n) + " elements, the shape " + ShapeToString(dims) + " says " +
                             std::to_string(dims[level]));
    return Status::Ok();
  }
};

// The value of `key` in `object`, or nullopt when absent; a malformed document is an error.
// Not simdjson's find_field_unordered: when it wraps around to search an object's first fields again it
// assumes they were well formed without checking, which on a malformed object (`{"a": 1 3}`) is undefined
// behaviour; one request crashed the server (found by tests/fuzz/v2_rest_fuzz.cc, inputs in its corpus).
// Instead the object is searched from its start, in order, every step checked; the fields of a request are
// few, and a value already passed over is skipped by its structure, not parsed again.
StatusOr<std::optional<od::value>> Field(od::object& object, std::string_view key, const std::string& where) {
  if (auto e = object.reset().error())
    return InvalidArgument("request body is not valid JSON (reading " + where + std::string(key) +
                           "): " + JsonError(e));
  od::value v;
  auto e = object.find_field(key).get(v);
  if (e == simdjson::NO_SUCH_FIELD) return std::optional<od::value>();
  if (e)
    return InvalidArgument("request body is not valid JSON (reading " + where + std::string(key) +
                           "): " + JsonError(e));
  return std::optional<od::value>(v);
}

// A field that must be a string when present.
StatusOr<std::optional<std::string>> StringField(od::object& object, std::string_view key, const std::string& where) {
  SERVING_ASSIGN_OR_RETURN(auto v, Field(object, key, where));
  if (!v) return std::optional<std::string>();
  std::string_view s;
  if (v->get_string().get(s)) return InvalidArgument(where + std::string(key) + " must be a string");
  return std::optional<std::string>(std::string(s));
}

// The value of `name` in `object`'s "parameters"; nullopt when either is absent.
StatusOr<std::optional<od::value>> Param(od::object& object, std::string_view name, const std::string& where) {
  SERVING_ASSIGN_OR_RETURN(auto p, Field(object, "parameters", where));
  if (!p) return std::optional<od::value>();
  od::object params;
  if (p->get_object().get(params)) return InvalidArgument(where + "parameters must be an object");
  return Field(params, name, where + "parameters.");
}

// A boolean in `object`'s "parameters"; nullopt when absent.
StatusOr<std::optional<bool>> BoolParam(od::object& object, std::string_view name, const std::string& where) {
  SERVING_ASSIGN_OR_RETURN(auto v, Param(object, name, where));
  if (!v) return std::optional<bool>();
  bool b;
  if (v->get_bool().get(b)) return InvalidArgument(where + "parameters." + std::string(name) + " must be a boolean");
  return std::optional<bool>(b);
}

// `json_bytes` bounds how many values the body can hold (each takes at least two bytes: "1,").
Status ParseInput(od::value value, size_t index, std::string_view binary, size_t& binary_offset, size_t json_bytes,
                  Tensor* out) {
  std::string where = "inputs[" + std::to_string(index) + "]";
  od::object in;
  if (value.get_object().get(in)) return InvalidArgument(where + " is not an object");
  SERVING_ASSIGN_OR_RETURN(auto name, StringField(in, "name", where + "."));
  if (!name || name->empty()) return v2::InputWithoutName(index);
  where = "input " + Quote(*name);
  SERVING_ASSIGN_OR_RETURN(auto datatype, StringField(in, "datatype", where + ": "));
  SERVING_ASSIGN_OR_RETURN(auto dtype, v2::InputDatatype(*name, datatype.value_or("")));
  const DataType d = dtype;

  SERVING_ASSIGN_OR_RETURN(auto shape, Field(in, "shape", where + ": "));
  od::array shape_array;
  if (!shape || shape->get_array().get(shape_array)) return InvalidArgument(where + ": shape is missing");
  Shape dims;
  for (auto dim : shape_array) {
    int64_t n;
    if (dim.get_int64().get(n)) return InvalidArgument(where + ": shape must hold integers");
    if (dims.size() == static_cast<size_t>(kMaxBodyNesting))
      return InvalidArgument(where + ": shape has too many dimensions");
    dims.push_back(n);
  }

  // binary_data_size says the values follow the JSON header; then `data` must not be there too.
  std::optional<size_t> binary_size;
  SERVING_ASSIGN_OR_RETURN(auto size, Param(in, "binary_data_size", where + ": "));
  if (size) {
    uint64_t n;
    if (size->get_uint64().get(n)) return InvalidArgument(where + ": binary_data_size must be a non-negative integer");
    binary_size = n;
  }
  SERVING_ASSIGN_OR_RETURN(auto data, Field(in, "data", where + ": "));
  if (binary_size) {
    if (data) return v2::DataSentTwice(*name);
    const size_t n = *binary_size;
    if (n > binary.size() - binary_offset)
      return InvalidArgument(where + ": binary_data_size " + std::to_string(n) + " exceeds the binary data sent (" +
                             std::to_string(binary.size() - binary_offset) + " bytes left)");
    *out = Tensor::Borrowed(*name, d, std::move(dims), binary.data() + binary_offset, n);
    binary_offset += n;
    return Status::Ok();
  }
  if (!data && v2::NeedsData(dims)) return v2::NoData(*name);
  if (!data) {
    *out = Tensor::Owning(*name, d, std::move(dims), {});
    return Status::Ok();
  }
  od::array data_array;
  if (data->get_array().get(data_array)) return InvalidArgument(where + ": data must be an array");
  DataReader reader{d, dims, where, *name, {}, 0};
  reader.out.reserve(std::min<size_t>(static_cast<size_t>(ElementCount(dims).value_or(0)), json_bytes / 2 + 1) *
                     ByteSize(d));
  SERVING_RETURN_IF_ERROR(reader.Array(data_array, 0, false));
  *out = Tensor::Owning(*name, d, std::move(dims), std::move(reader.out));
  return Status::Ok();
}

Status ParseOutputs(od::value value, V2HttpInfer* out) {
  od::array outputs;
  if (value.get_array().get(outputs)) return InvalidArgument("outputs must be an array");
  for (auto element : outputs) {
    od::object o;
    if (element.get_object().get(o)) return InvalidArgument("outputs[]: each output must be an object");
    SERVING_ASSIGN_OR_RETURN(auto name, StringField(o, "name", "outputs[]."));
    if (!name || name->empty()) return v2::OutputWithoutName();
    SERVING_ASSIGN_OR_RETURN(auto binary, BoolParam(o, "binary_data", "output " + Quote(*name) + ": "));
    out->request.requested_outputs.push_back(*name);
    if (binary) out->binary[*name] = *binary;
  }
  return Status::Ok();
}

// A tensor's name, datatype and shape, as v2 JSON writes them before its data.
ordered TensorHeader(const Tensor& t) {
  ordered o;
  o["name"] = t.name;
  o["datatype"] = DataTypeName(t.dtype);
  o["shape"] = t.shape;
  return o;
}

void AppendData(const Tensor& t, ordered& data) {
  data = ordered::array();
  auto& arr = data.get_ref<ordered::array_t&>();
  if (t.dtype == DataType::kBytes) {  // strings (bytes that are not UTF-8 are replaced when printed)
    for (std::string_view e : SplitBytesElements(t.bytes()).value_or(std::vector<std::string_view>{}))
      arr.emplace_back(std::string(e));
    return;
  }
  VisitDataType(t.dtype, [&](auto type) {
    using T = typename decltype(type)::type;
    if constexpr (!std::is_void_v<T>) {
      const size_t n = t.byte_size / sizeof(T);
      arr.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        T v;
        std::memcpy(&v, t.data + i * sizeof(T), sizeof(T));
        if constexpr (kIsFloating<T>) {
          arr.emplace_back(ToDouble(v));
        } else {
          arr.emplace_back(v);  // bool as true/false, integers exactly
        }
      }
    }
  });
}

// The request's own fields: id, binary_data_output and the scheduling parameters.
Status ReadRequestFields(od::object& root, V2HttpInfer& out) {
  SERVING_ASSIGN_OR_RETURN(auto id, StringField(root, "id", ""));
  if (id) out.request.id = std::move(*id);
  SERVING_ASSIGN_OR_RETURN(auto binary_output, BoolParam(root, "binary_data_output", ""));
  out.binary_by_default = binary_output.value_or(false);
  for (std::string_view name : v2::kSchedulingParameters) {
    SERVING_ASSIGN_OR_RETURN(auto v, Param(root, name, ""));
    if (!v) continue;
    uint64_t n = 0;
    SERVING_RETURN_IF_ERROR(
        v2::SetSchedulingParameter(name, v->get_uint64().get(n) ? std::nullopt : std::optional(n), out.request));
  }
  return Status::Ok();
}

// The inputs, their binary data taken from `binary` in order; every byte of it must be claimed.
Status ReadInputs(od::object& root, std::string_view binary, size_t json_size, V2HttpInfer& out) {
  SERVING_ASSIGN_OR_RETURN(auto inputs, Field(root, "inputs", ""));
  od::array input_array;
  if (!inputs) return v2::NoInputs();
  if (inputs->get_array().get(input_array)) return InvalidArgument("inputs must be an array");
  size_t offset = 0, index = 0;
  for (auto element : input_array) {
    od::value v;
    if (auto e = element.get(v)) return InvalidArgument("request body is not valid JSON: " + JsonError(e));
    Tensor t;
    SERVING_RETURN_IF_ERROR(ParseInput(v, index++, binary, offset, json_size, &t));
    out.request.inputs.push_back(std::move(t));
  }
  if (out.request.inputs.empty()) return v2::NoInputs();
  if (offset != binary.size())
    return InvalidArgument("binary data has " + std::to_string(binary.size() - offset) +
                           " bytes not claimed by any input's binary_data_size");
  return Status::Ok();
}

// Nothing may follow the object (a second document, a NUL byte and garbage, ...): walks the rest of it and
// requires the end of the input.
Status CheckNothingFollows(od::object& root, od::document& doc) {
  if (root.reset().error()) return InvalidArgument("request body is not valid JSON");
  for (auto field : root)
    if (auto e = field.error()) return InvalidArgument("request body is not valid JSON: " + JsonError(e));
  if (!doc.current_location().error()) return InvalidArgument("request body has content after its JSON object");
  return Status::Ok();
}

}  // namespace

StatusOr<V2HttpInfer> ParseV2InferBody(std::string_view body, std::optional<size_t> header_length, size_t readable) {
  if (header_length && *header_length > body.size())
    return InvalidArgument("Inference-Header-Content-Length " + std::to_string(*header_length) +
                           " exceeds the body size " + std::to_string(body.size()));
  const std::string_view head = header_length ? body.substr(0, *header_length) : body;
  const std::string_view binary = header_length ? body.substr(*header_length) : std::string_view();
  SERVING_RETURN_IF_ERROR(CheckJsonBody(head, kMaxBodyNesting));

  // simdjson reads up to SIMDJSON_PADDING bytes past the end: parse in place when the buffer has them,
  // else a padded copy of the JSON part (binary tensor data stays where it is). The parser's buffers live
  // for this call only, so a large body's memory goes back with its request.
  simdjson::padded_string copy;
  simdjson::padded_string_view json(head.data(), head.size(), readable);
  if (readable < head.size() + simdjson::SIMDJSON_PADDING) {
    copy = simdjson::padded_string(head);
    json = copy;
  }
  od::parser parser;
  od::document doc;
  if (auto e = parser.iterate(json).get(doc)) return InvalidArgument("request body is not valid JSON: " + JsonError(e));
  od::object root;
  if (auto e = doc.get_object().get(root))
    return InvalidArgument(e == simdjson::INCORRECT_TYPE ? "request body must be a JSON object"
                                                         : "request body is not valid JSON: " + JsonError(e));
  V2HttpInfer out;
  SERVING_RETURN_IF_ERROR(ReadRequestFields(root, out));
  SERVING_RETURN_IF_ERROR(ReadInputs(root, binary, head.size(), out));
  SERVING_ASSIGN_OR_RETURN(auto outputs, Field(root, "outputs", ""));
  if (outputs) SERVING_RETURN_IF_ERROR(ParseOutputs(*outputs, &out));
  SERVING_RETURN_IF_ERROR(CheckNothingFollows(root, doc));
  return out;
}

V2HttpBody EncodeV2InferResponse(const InferResponse& r, const V2HttpInfer& req) {
  ordered j;
  j["model_name"] = r.model;
  j["model_version"] = std::to_string(r.version);
  if (!r.id.empty()) j["id"] = r.id;
  j["outputs"] = ordered::array();
  std::string binary;
  for (const auto& t : r.outputs) {
    ordered o = TensorHeader(t);
    auto it = req.binary.find(t.name);
    const bool as_binary = it != req.binary.end() ? it->second : req.binary_by_default;
    if (as_binary) {
      o["parameters"] = {{"binary_data_size", t.byte_size}};
      binary.append(reinterpret_cast<const char*>(t.data), t.byte_size);
    } else {
      AppendData(t, o["data"]);
    }
    j["outputs"].push_back(std::move(o));
  }
  V2HttpBody body;
  body.bytes = j.dump(-1, ' ', false, ordered::error_handler_t::replace);
  if (!binary.empty()) {
    body.header_length = body.bytes.size();
    body.bytes += binary;
  }
  return body;
}

std::string EncodeV2InferRequestJson(const InferRequest& r) {
  ordered j;
  if (!r.id.empty()) j["id"] = r.id;
  j["inputs"] = ordered::array();
  for (const auto& t : r.inputs) {
    ordered i = TensorHeader(t);
    AppendData(t, i["data"]);
    j["inputs"].push_back(std::move(i));
  }
  return j.dump(-1, ' ', false, ordered::error_handler_t::replace);
}

std::string ErrorJson(const std::string& message) {
  return json{{"error", message}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string MetadataJson(const inference::ModelMetadataResponse& m) {
  auto tensors = [](const auto& list) {
    json arr = json::array();
    for (const auto& t : list)
      arr.push_back({{"name", t.name()},
                     {"datatype", t.datatype()},
                     {"shape", std::vector<int64_t>(t.shape().begin(), t.shape().end())}});
    return arr;
  };
  json j{{"name", m.name()},
         {"versions", std::vector<std::string>(m.versions().begin(), m.versions().end())},
         {"platform", m.platform()},
         {"inputs", tensors(m.inputs())},
         {"outputs", tensors(m.outputs())}};
  return j.dump();
}

std::string ServerMetadataJson(const inference::ServerMetadataResponse& m) {
  return json{{"name", m.name()},
              {"version", m.version()},
              {"extensions", std::vector<std::string>(m.extensions().begin(), m.extensions().end())}}
      .dump();
}

namespace {

// `message` as JSON with the values of the named 64-bit integer fields (scalars or lists; map keys stay
// strings) printed as numbers. Read as signed (dims may be -1; counters never reach 2^63).
std::string WithIntegerNumbers(const google::protobuf::Message& message, const std::set<std::string>& int64_fields) {
  json j = json::parse(ProtoToJson(message));
  const auto number = [](json& v) {  // only what protobuf printed as a quoted integer (a map may reuse a key)
    if (!v.is_string()) return;
    const auto& text = v.get_ref<const std::string&>();
    int64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec == std::errc() && end == text.data() + text.size() && !text.empty()) v = n;
  };
  const std::function<void(json&)> walk = [&](json& node) {
    if (node.is_array()) {
      for (auto& e : node) walk(e);
      return;
    }
    if (!node.is_object()) return;
    for (auto& [key, value] : node.items()) {
      if (!int64_fields.count(key)) {
        walk(value);
      } else if (value.is_array()) {
        for (auto& e : value) number(e);
      } else {
        number(value);
      }
    }
  };
  walk(j);
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

std::string ModelConfigJson(const inference::ModelConfigResponse& config) {
  static const std::set<std::string> kInt64 = {"dims",
                                               "shape",
                                               "versions",
                                               "max_queue_delay_microseconds",
                                               "priority_levels",
                                               "default_priority_level",
                                               "default_timeout_microseconds"};
  return WithIntegerNumbers(config.config(), kInt64);
}

std::string ModelStatisticsJson(const inference::ModelStatisticsResponse& stats) {
  static const std::set<std::string> kUint64 = {"last_inference", "inference_count", "execution_count", "count", "ns",
                                                "batch_size"};
  return WithIntegerNumbers(stats, kUint64);
}

std::string RepositoryIndexJson(const inference::RepositoryIndexResponse& index) {
  json arr = json::array();
  for (const auto& m : index.models()) {
    json e{{"name", m.name()}, {"state", m.state()}};
    if (!m.version().empty()) e["version"] = m.version();
    if (!m.reason().empty()) e["reason"] = m.reason();
    arr.push_back(std::move(e));
  }
  return arr.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace serving::frontends
