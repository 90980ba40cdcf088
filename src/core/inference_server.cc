#include "core/inference_server.h"

#include <random>

#include "core/control_queue.h"
#include "core/model_repository.h"
#include "core/request_observer.h"
#include "core/validate.h"

namespace serving {
namespace {

std::string RandomHex(size_t n) {
  thread_local std::mt19937_64 rng(std::random_device{}() ^ std::hash<std::thread::id>{}(std::this_thread::get_id()));
  static const char* kHex = "0123456789abcdef";
  std::string s(n, '0');
  uint64_t bits = 0;
  for (size_t i = 0; i < n; ++i) {
    if (i % 16 == 0) bits = rng();
    s[i] = kHex[bits & 0xf];
    bits >>= 4;
  }
  return s;
}

const RequestObservers& NoObservers() {
  static const RequestObservers none;
  return none;
}

// Request ids are echoed in the reply and every log line: a longer one is refused, and only its start is
// kept for the log line that says so.
constexpr size_t kMaxRequestIdBytes = 256;

Status CheckRequestId(std::string& id) {
  if (id.size() <= kMaxRequestIdBytes) return Status::Ok();
  Status s = InvalidArgument("request id is " + std::to_string(id.size()) + " bytes; at most " +
                             std::to_string(kMaxRequestIdBytes) + " are allowed");
  id.resize(kMaxRequestIdBytes);
  return s;
}

}  // namespace

std::string NewTraceId() { return RandomHex(32); }

std::string NewSpanId() {
  std::string id = RandomHex(16);
  if (id == "0000000000000000") id.back() = '1';
  return id;
}

TraceContext ParseTraceContext(std::string_view tp, std::string_view tracestate) {
  // version "-" trace-id "-" parent-id "-" flags: 00-<32 hex>-<16 hex>-<2 hex>. A later version may append
  // fields ("-..."); version ff is invalid.
  constexpr std::string_view kHex = "0123456789abcdef";
  TraceContext c;
  if (tp.size() < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-') return c;
  if (tp.substr(0, 2) == "ff" || tp.substr(0, 2).find_first_not_of(kHex) != std::string_view::npos) return c;
  if (tp.substr(0, 2) == "00" ? tp.size() != 55 : tp.size() > 55 && tp[55] != '-') return c;
  const std::string_view id = tp.substr(3, 32), parent = tp.substr(36, 16), flags = tp.substr(53, 2);
  for (std::string_view field : {id, parent, flags})
    if (field.find_first_not_of(kHex) != std::string_view::npos) return c;
  if (id == std::string_view("00000000000000000000000000000000") || parent == std::string_view("0000000000000000"))
    return c;
  c.trace_id = id;
  c.parent_span_id = parent;
  c.parent_sampled = (kHex.find(flags[1]) & 1) != 0;  // the flags' lowest bit
  if (tracestate.size() <= 512) c.tracestate = tracestate;
  return c;
}

InferenceServer::InferenceServer(Options options, ModelRepository* repository, const RequestObservers* observers)
    : options_(std::move(options)),
      repository_(repository),
      observers_(observers ? observers : &NoObservers()),
      control_(std::make_unique<ControlQueue>()) {}

InferenceServer::~InferenceServer() = default;

std::string InferenceServer::DefaultModel() const {
  if (!options_.default_model.empty()) return options_.default_model;
  auto models = repository_->List();
  return models.empty() ? "" : models.front().name;
}

bool InferenceServer::Ready() const {
  return !draining_.load() && (!options_.strict_readiness || repository_->AllReady());
}

std::vector<ModelInfo> InferenceServer::ListModels() const { return repository_->List(); }

StatusOr<std::shared_ptr<ModelVersion>> InferenceServer::Resolve(const std::string& model,
                                                                 const std::string& version) const {
  if (!model.empty()) return repository_->Get(model, version);
  std::string name = DefaultModel();
  if (name.empty()) return NotFound("no model given and the server has no default model");
  return repository_->Get(name, version);
}

StatusOr<ModelDescription> InferenceServer::Describe(const std::string& model, const std::string& version) const {
  SERVING_ASSIGN_OR_RETURN(const std::shared_ptr<ModelVersion> mv, Resolve(model, version));
  ModelDescription d;
  d.config = mv->shared_config();
  d.version = mv->version();
  d.signature = mv->signature();
  for (const auto& m : repository_->List()) {
    if (m.name != d.config->name) continue;
    for (const auto& v : m.versions)
      if (v.state == VersionState::kReady) d.ready_versions.push_back(v.version);
  }
  return d;
}

StatusOr<std::vector<VersionStatistics>> InferenceServer::Statistics(const std::string& model,
                                                                     const std::string& version) const {
  std::vector<VersionStatistics> out;
  auto add = [&out](const ModelVersion& mv) {
    if (auto stats = mv.statistics()) out.push_back({mv.config().name, mv.version(), std::move(stats)});
  };
  if (!version.empty()) {
    SERVING_ASSIGN_OR_RETURN(const std::shared_ptr<ModelVersion> mv, repository_->Get(model, version));
    add(*mv);
    return out;
  }
  bool known = model.empty();
  for (const auto& m : repository_->List()) {
    if (!model.empty() && m.name != model) continue;
    known = true;
    for (const auto& v : m.versions) {
      if (v.state != VersionState::kReady) continue;
      if (auto mv = repository_->Get(m.name, std::to_string(v.version)); mv.ok()) add(**mv);
    }
  }
  if (!known) return NotFound("model '" + model + "' not found");
  return out;
}

namespace {

// Triton's words, so tools that look for them recognise the refusal; then what to do about it.
Status ModelControlDisabled() {
  return FailedPrecondition(
      "explicit model load / unload is not allowed if polling is enabled: this server's model control mode is not "
      "explicit (start it with --model-control-mode=explicit to load and unload models by request)");
}

}  // namespace

void InferenceServer::LoadModel(const std::string& model, const ControlCallback& done) {
  ControlModel(true, model, done);
}

void InferenceServer::UnloadModel(const std::string& model, const ControlCallback& done) {
  ControlModel(false, model, done);
}

void InferenceServer::ControlModel(bool load, const std::string& model, const ControlCallback& done) {
  const char* action = load ? "load" : "unload";
  observers_->ControlStarted(action, model);
  const auto finish = [this, action, model, done](const Status& status) {
    observers_->ControlFinished(action, model, status);
    done(status);
  };
  if (!options_.explicit_model_control) return finish(ModelControlDisabled());
  if (!Admit()) return finish(Unavailable("the server is shutting down"));
  auto task = [this, load, model, finish](bool dropped) {
    finish(dropped ? Unavailable("the server is shutting down")
           : load  ? repository_->Load(model)
                   : repository_->Unload(model));
    Release();
  };
  if (!control_->Post(task)) {
    finish(ResourceExhausted("too many model load and unload requests are waiting; try again later"));
    Release();
  }
}

StatusOr<bool> InferenceServer::ModelReady(const std::string& model, const std::string& version) const {
  auto mv = Resolve(model, version);
  if (mv.ok()) return true;
  if (mv.status().code() == StatusCode::kUnavailable) return false;
  return mv.status();
}

Status InferenceServer::Prepare(InferRequest& request, const RequestDecoder& decoder,
                                std::shared_ptr<ModelVersion>* version) {
  // Where the transport named the model (a /v2 path), the version is looked up before the body is parsed, and a
  // request its queue has no room for is refused then: under overload the parse is most of what a refusal
  // costs (docs/reliability.md#overload). Enqueue checks again. A lookup that fails is answered after the parse,
  // as on the protocols that name the model inside the body (a malformed body is reported first everywhere).
  std::shared_ptr<ModelVersion> early;
  if (!request.model.empty() && decoder.parse) {
    if (auto found = repository_->Get(request.model, request.version); found.ok()) {
      early = std::move(found).value();
      if (Status room = early->scheduler().Room(); !room.ok()) {
        *version = std::move(early);
        return room;
      }
    }
  }
  if (decoder.parse) {
    if (Status s = decoder.parse(request); !s.ok()) return s;
  }
  if (Status s = CheckRequestId(request.id); !s.ok()) return s;
  if (early) {
    *version = std::move(early);
  } else {
    SERVING_ASSIGN_OR_RETURN(*version, Resolve(request.model, request.version));
  }
  const ModelVersion& mv = **version;
  if (decoder.decode) {
    if (Status s = decoder.decode(ModelView{mv.config(), mv.version(), mv.signature()}, request); !s.ok()) return s;
  }
  return ValidateRequest(mv.signature(), mv.config().max_batch_size, &request);
}

void InferenceServer::Infer(InferRequest request, const RequestDecoder& decoder, ResponseEncoder encoder) {
  if (request.trace.trace_id.empty()) request.trace.trace_id = NewTraceId();
  request.trace.span_id = NewSpanId();
  observers_->Received(request);
  if (!Admit()) {
    const Status closed = Unavailable("the server is shutting down");
    if (request.id.empty()) request.id = RandomHex(16);
    const Clock::time_point answered = Clock::now();
    encoder.send(closed);
    Finish(request, nullptr, closed, /*queued=*/false, answered);
    return;
  }
  std::shared_ptr<ModelVersion> mv;
  Status status = Prepare(request, decoder, &mv);
  if (request.id.empty()) request.id = RandomHex(16);
  if (!status.ok()) {
    (void)CheckRequestId(request.id);  // a parse that failed may have left a long one: cut for the log line
    const FailReason reason =
        status.code() == StatusCode::kResourceExhausted ? FailReason::kRejected : FailReason::kOther;
    if (mv) mv->observers().Failed(request, reason, Clock::now());
    const Clock::time_point answered = Clock::now();
    encoder.send(status);
    Finish(request, mv.get(), status, /*queued=*/false, answered);
    Release();
    return;
  }
  // The clock started when the transport received the request: this is its decode time, parsing included.
  request.decode_time = Clock::now() - request.received;
  for (const Tensor& t : request.inputs) request.input_bytes += t.byte_size;
  mv->observers().Decoded(request);

  // Finish() reports the request's id/protocol/trace: keep them, the job takes the request itself.
  InferRequest meta;
  meta.id = request.id;
  meta.protocol = request.protocol;
  meta.trace = request.trace;
  meta.input_bytes = request.input_bytes;
  meta.principal = request.principal;
  meta.tls_identity = request.tls_identity;
  meta.received = request.received;

  Scheduler& scheduler = mv->scheduler();
  Scheduler::Job job;
  job.request = std::move(request);
  // `mv` keeps the version (and its scheduler) alive until the reply has been handed back, and is let go
  // before the request stops counting as in flight: once the server is idle no worker holds a version, so
  // the repository's reference is the last one and a worker never destroys the scheduler it runs on.
  job.done = [this, mv, meta, encoder = std::move(encoder)](StatusOr<InferResponse> result) mutable {
    if (result.ok())
      for (const Tensor& t : result->outputs) meta.output_bytes += t.byte_size;
    if (result.ok() && encoder.encode) {
      const auto encode_start = Clock::now();
      encoder.encode(*result);
      mv->observers().Encoded(Clock::now() - encode_start);
    }
    const Status status = result.status();
    const Clock::time_point answered = Clock::now();
    encoder.send(std::move(result));
    Finish(meta, mv.get(), status, /*queued=*/true, answered);
    mv.reset();
    Release();
  };
  status = scheduler.Enqueue(job);
  if (!status.ok()) {
    const FailReason reason =
        status.code() == StatusCode::kResourceExhausted ? FailReason::kRejected : FailReason::kOther;
    mv->observers().Failed(job.request, reason, Clock::now());
    job.done(status);  // a job Enqueue refuses is left as it was
  }
}

void InferenceServer::Finish(const InferRequest& request, const ModelVersion* version, const Status& status,
                             bool queued, Clock::time_point answered) {
  const RequestOutcome outcome{request,
                               version ? std::string_view(version->config().name) : std::string_view(),
                               version ? version->version() : 0,
                               status,
                               queued,
                               answered};
  observers_->Finished(outcome, version ? &version->observers() : nullptr);
}

bool InferenceServer::WaitIdle(Clock::time_point deadline) {
  MutexLock lock(idle_mu_);
  return idle_cv_.WaitUntil(idle_mu_, deadline, [this] { return inflight_.load() == 0; });
}

bool InferenceServer::Close(Clock::time_point deadline) {
  MutexLock lock(idle_mu_);
  const bool idle = idle_cv_.WaitUntil(idle_mu_, deadline, [this] { return inflight_.load() == 0; });
  closed_ = true;
  return idle;
}

bool InferenceServer::Admit() {
  {
    MutexLock lock(idle_mu_);
    if (closed_) return false;
    inflight_.fetch_add(1);
  }
  return true;
}

void InferenceServer::Release() {
  // Decrement under the lock WaitIdle() checks with: otherwise WaitIdle could see 0 and its caller destroy
  // this server while this thread is still about to touch idle_mu_/idle_cv_.
  MutexLock lock(idle_mu_);
  if (inflight_.fetch_sub(1) == 1) idle_cv_.NotifyAll();
}

}  // namespace serving
