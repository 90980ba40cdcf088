// InferenceServer: the core's front door and the one core header frontends include (a test checks
// that nothing of the repository, the scheduler, model versions or prometheus-cpp reaches them).
//
// A frontend hands Infer() a request with what its transport knows (protocol, trace id, receive time,
// deadline, cancellation) and a RequestDecoder: `parse` turns the wire message into the request, then
// `decode` runs against the model version the core resolved (for protocols that need its signature,
// like inference.v1's rows). The core runs both, validates the inputs, queues the request on that
// version's scheduler and calls back with the response. Every outcome, a decode that failed included,
// is reported here to the observers (core/request_observer.h: metrics, statistics, the access log), so a frontend
// cannot forget to. Listing models, metadata and health go through the same narrow API.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/infer_request.h"
#include "core/model_signature.h"
#include "core/model_status.h"
#include "core/mutex.h"
#include "observability/model_statistics.h"

namespace serving {

class ModelRepository;
class ModelVersion;
class RequestObservers;
class VersionObservers;

// A resolved model version as a decode step sees it; valid during the call.
struct ModelView {
  const ModelSettings& config;
  int64_t version;
  const ModelSignature& signature;
};

// A model version's description for metadata replies.
struct ModelDescription {
  std::shared_ptr<const ModelSettings> config;
  int64_t version = 0;
  ModelSignature signature;
  std::vector<int64_t> ready_versions;  // of the same model, ascending
};

// One ready model version's statistics (Triton's statistics extension), kept alive by `stats`.
struct VersionStatistics {
  std::string name;
  int64_t version = 0;
  std::shared_ptr<const ModelStatistics> stats;
};

// Both steps run inside Infer(), on the caller's (the transport's) thread.
struct RequestDecoder {
  // Before the model is resolved: reads the wire message into the request (model, version, id, and the
  // inputs when they need nothing of the model). Optional.
  std::function<Status(InferRequest&)> parse;
  // After: what needs the resolved version (its signature, config). Optional.
  std::function<Status(const ModelView&, InferRequest&)> decode;
};

// How a frontend answers. `encode` (optional) turns a successful response into the frontend's wire message,
// which the frontend keeps; `send` then hands the outcome to the transport. The core times `encode` alone as
// the output conversion, so that histogram holds no transport time (a gRPC Finish, an HTTP write). Both run on
// the thread that finished the request: a scheduler worker, or the caller's when it ran there or was refused.
struct ResponseEncoder {
  std::function<void(const InferResponse&)> encode;
  InferCallback send;
};

class ControlQueue;

class InferenceServer {
 public:
  struct Options {
    std::string default_model;  // empty: the alphabetically first model
    // Repository load/unload requests are served (Triton's --model-control-mode=explicit); otherwise they are
    // refused with FAILED_PRECONDITION, counted and logged.
    bool explicit_model_control = false;
    // Triton's --strict-readiness: true: ready only while every model has a ready version; false: ready
    // whatever the models' states (each model's own readiness still says), for repositories every replica
    // shares, where one broken or half-uploaded model must not take the serving ones out of rotation.
    bool strict_readiness = true;
  };

  // `observers` (may be null: nobody watches) must be the list the repository asks for versions' observers.
  InferenceServer(Options options, ModelRepository* repository, const RequestObservers* observers);
  ~InferenceServer();

  // Asynchronous; `encoder.send` runs exactly once, possibly before Infer returns (on errors) or on a worker
  // thread, after `encoder.encode` when the request succeeded. `request` carries the transport's part
  // (protocol, trace context, received, deadline, cancelled); `decoder` fills in the rest. An empty request id or
  // trace id is generated.
  void Infer(InferRequest request, const RequestDecoder& decoder, ResponseEncoder encoder);
  // Without a wire encoding (tests, tools): `done` gets the response itself.
  void Infer(InferRequest request, const RequestDecoder& decoder, InferCallback done) {
    Infer(std::move(request), decoder, ResponseEncoder{nullptr, std::move(done)});
  }
  void Infer(InferRequest request, InferCallback done) { Infer(std::move(request), RequestDecoder{}, std::move(done)); }

  // `model` empty: the default model; `version` empty: the newest ready one. NOT_FOUND for unknown
  // models/versions, UNAVAILABLE when the version exists but is not ready.
  StatusOr<ModelDescription> Describe(const std::string& model, const std::string& version) const;
  // OK with false for a known-but-unready version, NOT_FOUND for unknown models.
  StatusOr<bool> ModelReady(const std::string& model, const std::string& version) const;
  std::vector<ModelInfo> ListModels() const;
  // Explicit model control (ModelRepository::Load/Unload), counted and logged; FAILED_PRECONDITION unless
  // Options::explicit_model_control. Asynchronous: the work runs on the one control thread (never on the
  // caller's, which is a transport's), and `done` runs once with the outcome, on that thread, or on the
  // caller's when refused at once (not explicit, RESOURCE_EXHAUSTED with 64 requests already waiting,
  // UNAVAILABLE once closed). Requests run one at a time, in order, and count as in flight for draining.
  using ControlCallback = std::function<void(const Status&)>;
  void LoadModel(const std::string& model, const ControlCallback& done);
  void UnloadModel(const std::string& model, const ControlCallback& done);
  // Statistics of the ready versions of `model` (empty: of every model); `version` narrows to one. NOT_FOUND
  // for unknown models/versions. Versions without statistics (no metrics in unit tests) are left out.
  StatusOr<std::vector<VersionStatistics>> Statistics(const std::string& model, const std::string& version) const;
  std::string DefaultModel() const;

  bool Live() const { return true; }
  // Ready to take traffic: the server is not draining and (with strict readiness) every model has a ready
  // version.
  bool Ready() const;
  // Readiness turns false; requests are still served (the frontends stop accepting new connections).
  void BeginDrain() { draining_.store(true); }
  bool draining() const { return draining_.load(); }
  // Waits until no request is in flight or the deadline passes; returns whether it drained.
  bool WaitIdle(Clock::time_point deadline) EXCLUDES(idle_mu_);
  // The last step of a shutdown: waits like WaitIdle(), then admits nothing more, atomically with seeing
  // the server idle, so no request can start after it returns (later ones fail with UNAVAILABLE). A
  // frontend may still dispatch requests on open connections until it stops; they must not outlive us.
  bool Close(Clock::time_point deadline) EXCLUDES(idle_mu_);
  int64_t inflight() const { return inflight_.load(); }

 private:
  StatusOr<std::shared_ptr<ModelVersion>> Resolve(const std::string& model, const std::string& version) const;
  // Parses, resolves, decodes and validates; on success `*version` is the version to run on.
  Status Prepare(InferRequest& request, const RequestDecoder& decoder, std::shared_ptr<ModelVersion>* version);
  // Tells the observers that a request finished (after its reply was handed to the frontend). `version` may be
  // null; `queued`: it reached the version's scheduler; `answered`: the moment its reply was handed over.
  void Finish(const InferRequest& request, const ModelVersion* version, const Status& status, bool queued,
              Clock::time_point answered);
  void ControlModel(bool load, const std::string& model, const ControlCallback& done);
  // Starts a request's in-flight accounting; false once Close() has returned.
  bool Admit() EXCLUDES(idle_mu_);
  // Ends a request's in-flight accounting; called after its callback has run.
  void Release() EXCLUDES(idle_mu_);

  const Options options_;
  ModelRepository* const repository_;
  const RequestObservers* const observers_;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> inflight_{0};
  Mutex idle_mu_;
  CondVar idle_cv_;
  bool closed_ GUARDED_BY(idle_mu_) = false;
  std::unique_ptr<ControlQueue> control_;  // declared last: its thread stops before the rest goes
};

// The trace context from W3C `traceparent` and `tracestate` values: trace id, parent span and its sampled flag;
// left empty when `traceparent` is malformed (the core then starts a new trace), and `tracestate` kept only with
// a valid `traceparent` and when at most 512 bytes.
TraceContext ParseTraceContext(std::string_view traceparent, std::string_view tracestate);
// 32 random lowercase hex chars.
std::string NewTraceId();
// 16 random lowercase hex chars, never all zeros (W3C's invalid span id): a span's id.
std::string NewSpanId();

}  // namespace serving
