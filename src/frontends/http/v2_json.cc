#include "frontends/http/v2_json.h"

#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

namespace serving::frontends {
namespace {

using json = nlohmann::json;
// Responses keep the spec's field order (name, datatype, shape, data) for people reading them.
using ordered = nlohmann::ordered_json;

// Appends one JSON number (or bool) as `dtype` to `out`, range-checked; integers never pass through double.
template <typename T>
bool Put(const json& v, std::vector<std::byte>& out) {
  T t;
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) return false;
    t = v.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    if (v.is_number_unsigned()) {
      auto u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<T>::max())) return false;
      t = static_cast<T>(u);
    } else if (v.is_number_integer()) {
      auto i = v.get<int64_t>();
      if (i < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
          (i > 0 && static_cast<uint64_t>(i) > static_cast<uint64_t>(std::numeric_limits<T>::max())))
        return false;
      t = static_cast<T>(i);
    } else {
      return false;
    }
  } else {
    if (!v.is_number()) return false;
    t = static_cast<T>(v.get<double>());
  }
  const size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &t, sizeof(T));
  return true;
}

bool PutAs(DataType d, const json& v, std::vector<std::byte>& out) {
  switch (d) {
    case DataType::kBool: return Put<bool>(v, out);
    case DataType::kInt8: return Put<int8_t>(v, out);
    case DataType::kInt16: return Put<int16_t>(v, out);
    case DataType::kInt32: return Put<int32_t>(v, out);
    case DataType::kInt64: return Put<int64_t>(v, out);
    case DataType::kUint8: return Put<uint8_t>(v, out);
    case DataType::kUint16: return Put<uint16_t>(v, out);
    case DataType::kUint32: return Put<uint32_t>(v, out);
    case DataType::kUint64: return Put<uint64_t>(v, out);
    case DataType::kFp32: return Put<float>(v, out);
    case DataType::kFp64: return Put<double>(v, out);
    case DataType::kInvalid: break;
  }
  return false;
}

// `data` may be flat or nested (row-major); both flatten the same way.
Status Flatten(const json& data, DataType d, const std::string& where, std::vector<std::byte>& out, size_t& count) {
  if (data.is_array()) {
    for (const auto& e : data) SERVING_RETURN_IF_ERROR(Flatten(e, d, where, out, count));
    return Status::Ok();
  }
  if (!PutAs(d, data, out))
    return InvalidArgument(where + ".data[" + std::to_string(count) + "]: " + data.dump() + " is not a valid " +
                           DataTypeName(d));
  ++count;
  return Status::Ok();
}

std::optional<bool> BoolParam(const json& obj, const char* name) {
  if (!obj.is_object()) return std::nullopt;
  auto p = obj.find("parameters");
  if (p == obj.end() || !p->is_object()) return std::nullopt;
  auto v = p->find(name);
  if (v == p->end() || !v->is_boolean()) return std::nullopt;
  return v->get<bool>();
}

Status ParseInput(const json& in, size_t index, std::string_view binary, size_t& binary_offset, Tensor* out) {
  std::string where = "inputs[" + std::to_string(index) + "]";
  if (!in.is_object()) return InvalidArgument(where + " is not an object");
  auto name = in.find("name");
  auto datatype = in.find("datatype");
  auto shape = in.find("shape");
  if (name == in.end() || !name->is_string()) return InvalidArgument(where + ".name is missing");
  where = "input '" + name->get<std::string>() + "'";
  if (datatype == in.end() || !datatype->is_string()) return InvalidArgument(where + ": datatype is missing");
  if (shape == in.end() || !shape->is_array()) return InvalidArgument(where + ": shape is missing");
  DataType d = DataTypeFromName(datatype->get<std::string>());
  if (d == DataType::kInvalid)
    return InvalidArgument(where + ": datatype '" + datatype->get<std::string>() + "' is not supported");
  Shape dims;
  for (const auto& s : *shape) {
    if (!s.is_number_integer()) return InvalidArgument(where + ": shape must hold integers");
    dims.push_back(s.get<int64_t>());
  }
  auto params = in.find("parameters");
  if (params != in.end() && params->is_object() && params->contains("binary_data_size")) {
    const auto& size = (*params)["binary_data_size"];
    if (!size.is_number_unsigned()) return InvalidArgument(where + ": binary_data_size must be a non-negative integer");
    const size_t n = size.get<size_t>();
    if (n > binary.size() - binary_offset)
      return InvalidArgument(where + ": binary_data_size " + std::to_string(n) + " exceeds the binary data sent (" +
                             std::to_string(binary.size() - binary_offset) + " bytes left)");
    *out = Tensor::Borrowed(name->get<std::string>(), d, std::move(dims), binary.data() + binary_offset, n);
    binary_offset += n;
    return Status::Ok();
  }
  auto data = in.find("data");
  if (data == in.end()) return InvalidArgument(where + ": data is missing");
  std::vector<std::byte> bytes;
  size_t count = 0;
  SERVING_RETURN_IF_ERROR(Flatten(*data, d, where, bytes, count));
  *out = Tensor::Owning(name->get<std::string>(), d, std::move(dims), std::move(bytes));
  return Status::Ok();
}

void AppendData(const Tensor& t, ordered& data) {
  const size_t n = t.byte_size / std::max<size_t>(1, ByteSize(t.dtype));
  data = ordered::array();
  auto& arr = data.get_ref<ordered::array_t&>();
  arr.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    double v = ElementAsDouble(t, i);
    switch (t.dtype) {
      case DataType::kBool: arr.emplace_back(v != 0.0); break;
      case DataType::kFp32: case DataType::kFp64: arr.emplace_back(v); break;
      case DataType::kInt64: {
        int64_t x;
        std::memcpy(&x, t.data + i * 8, 8);
        arr.emplace_back(x);
        break;
      }
      case DataType::kUint64: {
        uint64_t x;
        std::memcpy(&x, t.data + i * 8, 8);
        arr.emplace_back(x);
        break;
      }
      default: arr.emplace_back(static_cast<int64_t>(v)); break;
    }
  }
}

}  // namespace

StatusOr<V2HttpInfer> ParseV2InferBody(std::string_view body, std::optional<size_t> header_length) {
  if (header_length && *header_length > body.size())
    return InvalidArgument("Inference-Header-Content-Length " + std::to_string(*header_length) +
                           " exceeds the body size " + std::to_string(body.size()));
  const std::string_view head = header_length ? body.substr(0, *header_length) : body;
  const std::string_view binary = header_length ? body.substr(*header_length) : std::string_view();
  json j = json::parse(head.begin(), head.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument("request body is not valid JSON");
  if (!j.is_object()) return InvalidArgument("request body must be a JSON object");

  V2HttpInfer out;
  if (auto id = j.find("id"); id != j.end()) {
    if (!id->is_string()) return InvalidArgument("id must be a string");
    out.request.id = id->get<std::string>();
  }
  out.binary_by_default = BoolParam(j, "binary_data_output").value_or(false);
  auto inputs = j.find("inputs");
  if (inputs == j.end() || !inputs->is_array() || inputs->empty())
    return InvalidArgument("inputs is missing or empty");
  size_t offset = 0;
  for (size_t i = 0; i < inputs->size(); ++i) {
    Tensor t;
    SERVING_RETURN_IF_ERROR(ParseInput((*inputs)[i], i, binary, offset, &t));
    out.request.inputs.push_back(std::move(t));
  }
  if (offset != binary.size())
    return InvalidArgument("binary data has " + std::to_string(binary.size() - offset) +
                           " bytes not claimed by any input's binary_data_size");
  if (auto outputs = j.find("outputs"); outputs != j.end()) {
    if (!outputs->is_array()) return InvalidArgument("outputs must be an array");
    for (const auto& o : *outputs) {
      if (!o.is_object() || !o.contains("name") || !o["name"].is_string())
        return InvalidArgument("outputs[]: each output needs a name");
      const std::string name = o["name"].get<std::string>();
      out.request.requested_outputs.push_back(name);
      if (auto b = BoolParam(o, "binary_data")) out.binary[name] = *b;
    }
  }
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
    ordered o;
    o["name"] = t.name;
    o["datatype"] = DataTypeName(t.dtype);
    o["shape"] = t.shape;
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

std::string ErrorJson(const std::string& message) {
  return json{{"error", message}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string MetadataJson(const inference::ModelMetadataResponse& m) {
  auto tensors = [](const auto& list) {
    json arr = json::array();
    for (const auto& t : list)
      arr.push_back({{"name", t.name()}, {"datatype", t.datatype()}, {"shape", std::vector<int64_t>(t.shape().begin(), t.shape().end())}});
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
  return json{{"name", m.name()}, {"version", m.version()},
              {"extensions", std::vector<std::string>(m.extensions().begin(), m.extensions().end())}}.dump();
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
