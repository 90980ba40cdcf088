#include "frontends/common/v1_codec.h"

#include <algorithm>
#include <unordered_map>

namespace serving::frontends {

Status DecodeV1Rows(const inference::v1::InferRequest& in, const ModelView& model, InferRequest& request) {
  const auto& sig = model.signature;
  const auto& cfg = model.config;
  if (sig.inputs.size() != 1 || sig.inputs[0].shape.size() != 2)
    return FailedPrecondition("model '" + cfg.name + "' does not take one [batch, features] input; use the v2 API");
  const TensorSpec& spec = sig.inputs[0];
  if (in.rows().empty()) return InvalidArgument("rows is empty: send at least one row");

  const int64_t declared = spec.shape[1];
  int64_t width =
      declared >= 0 ? declared : (!cfg.feature_names.empty() ? static_cast<int64_t>(cfg.feature_names.size()) : -1);
  std::unordered_map<std::string, int> position;
  for (size_t i = 0; i < cfg.feature_names.size(); ++i) position[cfg.feature_names[i]] = static_cast<int>(i);

  std::vector<double> values;
  for (int r = 0; r < in.rows_size(); ++r) {
    const auto& row = in.rows(r);
    const std::string where = "rows[" + std::to_string(r) + "]";
    if (!row.values().empty() && !row.features().empty())
      return InvalidArgument(where + ": give either values or features, not both");
    if (row.values().empty() && row.features().empty())
      return InvalidArgument(where + ": has neither values nor features");
    if (width < 0) width = row.values_size();
    if (!row.values().empty()) {
      if (row.values_size() != width)
        return InvalidArgument(where + ".values has " + std::to_string(row.values_size()) + " values, model '" +
                               cfg.name + "' expects " + std::to_string(width));
      values.insert(values.end(), row.values().begin(), row.values().end());
      continue;
    }
    if (position.empty())
      return InvalidArgument(where + ".features: model '" + cfg.name + "' declares no feature names; use values");
    const size_t base = values.size();
    values.resize(base + static_cast<size_t>(width), 0.0);
    std::vector<bool> seen(static_cast<size_t>(width), false);
    for (const auto& [name, v] : row.features()) {
      auto it = position.find(name);
      if (it == position.end()) return InvalidArgument(where + ".features: unknown feature '" + name + "'");
      values[base + it->second] = v;
      seen[it->second] = true;
    }
    for (int i = 0; i < width; ++i)
      if (!seen[i]) return InvalidArgument(where + ".features: missing feature '" + cfg.feature_names[i] + "'");
  }
  SERVING_ASSIGN_OR_RETURN(auto bytes, EncodeDoubles(values, spec.dtype, "rows"));
  request.inputs.push_back(Tensor::Owning(spec.name, spec.dtype, {in.rows_size(), width}, std::move(bytes)));
  return Status::Ok();
}

void EncodeV1Response(const InferResponse& r, inference::v1::InferResponse* out) {
  out->set_model(r.model);
  out->set_version(std::to_string(r.version));
  out->set_request_id(r.id);
  size_t rows = 0;
  for (const auto& t : r.outputs) rows = std::max<size_t>(rows, t.shape.empty() ? 1 : static_cast<size_t>(t.shape[0]));
  for (size_t i = 0; i < rows; ++i) out->add_predictions();

  const auto& cfg = *r.config;
  for (const auto& t : r.outputs) {
    if (t.dtype == DataType::kBytes) continue;  // v1 outputs are numbers; BYTES outputs are on the v2 API
    const size_t n = t.byte_size / std::max<size_t>(1, ByteSize(t.dtype));
    const size_t t_rows = t.shape.empty() ? 1 : static_cast<size_t>(t.shape[0]);
    const size_t per_row = t_rows ? n / t_rows : 0;
    for (size_t i = 0; i < t_rows; ++i) {
      auto* p = out->mutable_predictions(static_cast<int>(i));
      auto* vals = (*p->mutable_outputs())[t.name].mutable_values();
      for (size_t k = 0; k < per_row; ++k) vals->Add(ElementAsDouble(t, i * per_row + k));
      if (t.name == cfg.scores_output) *p->mutable_scores() = *vals;
    }
  }
  if (cfg.labels.empty()) return;
  for (auto& p : *out->mutable_predictions()) {
    const auto& s = p.scores();
    if (static_cast<size_t>(s.size()) == cfg.labels.size()) {
      p.set_label(cfg.labels[static_cast<size_t>(std::max_element(s.begin(), s.end()) - s.begin())]);
    } else if (s.size() == 1 && cfg.labels.size() == 2) {  // a single positive-class probability
      p.set_label(cfg.labels[s[0] >= 0.5 ? 1 : 0]);
    }
  }
}

void RunV1Infer(InferenceServer& server, InferRequest request, std::shared_ptr<V1Call> call,
                const std::function<Status(inference::v1::InferRequest*)>& read, std::function<void(V1Call&)> write,
                std::function<void(V1Call&, const Status&)> send) {
  RequestDecoder decoder;
  decoder.parse = [&](InferRequest& r) {
    if (Status s = read(&call->in); !s.ok()) return s;
    r.id = call->in.request_id();
    r.model = call->in.model();
    r.version = call->in.version();
    return Status::Ok();
  };
  decoder.decode = [&](const ModelView& model, InferRequest& r) { return DecodeV1Rows(call->in, model, r); };
  ResponseEncoder encoder;
  encoder.encode = [call, write = std::move(write)](const InferResponse& response) {
    EncodeV1Response(response, &call->out);
    write(*call);
  };
  encoder.send = [call, send = std::move(send)](const StatusOr<InferResponse>& result) {
    send(*call, result.status());
  };
  server.Infer(std::move(request), decoder, std::move(encoder));
}

void ListModelsV1(const InferenceServer& server, inference::v1::ListModelsResponse* out) {
  const std::string default_model = server.DefaultModel();
  for (const auto& m : server.ListModels()) {
    auto* s = out->add_models();
    s->set_name(m.name);
    s->set_is_default(m.name == default_model);
    s->set_error(m.error);
    if (m.config) {
      s->set_platform(m.config->backend);
      s->mutable_feature_names()->Assign(m.config->feature_names.begin(), m.config->feature_names.end());
      s->mutable_labels()->Assign(m.config->labels.begin(), m.config->labels.end());
    }
    for (const auto& v : m.versions) {
      auto* vs = s->add_versions();
      vs->set_version(std::to_string(v.version));
      vs->set_state(VersionStateName(v.state));
      vs->set_reason(v.reason);
    }
  }
}

}  // namespace serving::frontends
