// Request observers: how the rest of the server watches requests go through the core without the core knowing
// who watches (docs/architecture.md#request-observers). The core notifies one list of observers
// (RequestObservers) at each step of a request's life. Prometheus metrics with Triton's statistics
// (observability/metrics_observer.h) and the access log (observability/access_log.h) are observers; tracing and
// payload logging are new observers, not edits of the scheduler or the server.
//
// Two levels:
//  - A RequestObserver sees every request, those that never reached a model included: Received, then
//    Finished once its reply has been handed to the frontend; and every explicit model load/unload.
//  - When a model version loads, each RequestObserver is asked once for a VersionObserver, which sees the steps
//    inside that version: decoded, queued, started (after its queue wait), executed with its batch, succeeded
//    or failed, encoded. It lives as long as the version; per request the core allocates nothing and looks up
//    nothing for observers (one virtual call per observer and step).
//
// Order of one request that reaches a model: Received, Decoded, [Queued, LeftQueue], Started, Executed (its
// batch's, shared with the batch's other requests), [Payload], Succeeded | Failed, Encoded (succeeded only),
// Finished. A request refused earlier skips the steps it never reached; Failed comes only once a version was
// resolved.
//
// Threads: each call runs on the thread doing that step (a transport thread, a scheduler worker, the control
// thread), concurrently with calls for other requests. Observers synchronise their own state and must not block
// the request path (no waiting on I/O; a log line is fine).
//
// Payload: tensors are never copied for observers. A VersionObserver that needs them says so (wants_payload(),
// asked once when the version loads); only then is Payload() called, with the request's inputs and, when the
// model ran, its outputs. Both are valid during the call only (inputs may borrow the transport's buffers): an
// observer copies what it keeps, within a bound of its own.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/infer_request.h"
#include "core/model_settings.h"
#include "core/status.h"
#include "observability/model_statistics.h"

namespace serving {

// One model execution, as its batch's requests share it.
struct ExecutionReport {
  size_t requests = 0;         // requests in the batch
  int64_t rows = 0;            // their rows, stacked
  Clock::time_point start;     // the batch left the queue
  Clock::time_point stacked;   // its inputs were ready (stacked when several)
  Clock::time_point executed;  // the model returned
  Clock::time_point sliced;    // each request's outputs were cut out
  Status status;               // of the execution and the slicing
  // Its requests, in batch order (valid during Executed only: the requests are answered after it).
  std::vector<const InferRequest*> batch;
};

// A finished request: its reply has been handed to the frontend.
struct RequestOutcome {
  // The transport's part (id, protocol, trace id, principal, TLS identity, received); its tensors are gone.
  const InferRequest& request;
  std::string_view model;  // empty: no version was resolved
  int64_t version = 0;
  const Status& status;
  bool queued = false;         // it reached the version's scheduler
  Clock::time_point finished;  // the moment the reply was handed to the frontend (just before it was sent)
};

class VersionObserver {
 public:
  virtual ~VersionObserver() = default;
  // Parsed, decoded and validated (transport thread); its decode_time is set (since the transport received it).
  virtual void Decoded(const InferRequest&) {}
  // Put in the version's queue (transport thread); not called for a request run at once on the caller's thread.
  // Queued and LeftQueue are called under the scheduler's lock, so a count kept from them is never past the
  // queue's bound: keep them to a counter's update.
  virtual void Queued(const InferRequest&) {}
  // A worker took `count` requests out of the queue, to run or to fail.
  virtual void LeftQueue(size_t /*count*/) {}
  // Its batch starts; its queue_time is set (about zero when it ran at once).
  virtual void Started(const InferRequest&) {}
  // Once per execution, before its requests are answered.
  virtual void Executed(const ExecutionReport&) {}
  virtual bool wants_payload() const { return false; }
  // Only when wants_payload(): the request's inputs and, when the execution succeeded, its response (else null).
  virtual void Payload(const InferRequest&, const InferResponse* /*response*/) {}
  // Answered with its outputs; called just before the reply is handed back, so a client that has its reply
  // finds it counted. `now` is that moment.
  virtual void Succeeded(const InferRequest&, const ExecutionReport&, Clock::time_point /*now*/) {}
  // Refused or failed after its version was resolved (bad input, queue full or timed out, cancelled, the
  // model failed); `now` is when.
  virtual void Failed(const InferRequest&, FailReason, Clock::time_point /*now*/) {}
  // The frontend's encoding of a successful response into its wire message took `encode`.
  virtual void Encoded(Clock::duration /*encode*/) {}
  // Triton's statistics of this version when this observer keeps them (one observer does), else null.
  virtual std::shared_ptr<const ModelStatistics> statistics() const { return nullptr; }
};

class RequestObserver {
 public:
  virtual ~RequestObserver() = default;
  // A model version loaded under `model` (its name, its config.pbtxt with the parameters this observer reads):
  // this observer's VersionObserver for it, or null when it watches nothing inside versions. Called by the
  // repository's loading thread.
  virtual std::shared_ptr<VersionObserver> ForVersion(const ModelSettings& /*model*/, int64_t /*version*/) {
    return nullptr;
  }
  // A config.pbtxt parameter as backends judge theirs (core/backend.h): kUnknown when it is not this observer's;
  // kRead, or kIgnored with why; an error refuses the config, naming the problem. Called by the thread parsing
  // the config, before any version of it loads.
  virtual StatusOr<ParameterUse> CheckParameter(const std::string& /*key*/, const std::string& /*value*/) const {
    return ParameterUse{};
  }
  // Every inference request, once, as the core takes it (a refused one too).
  virtual void Received(const InferRequest&) {}
  // Every inference request, once, after its reply; `own` is what ForVersion returned for its version (null when
  // no version was resolved, or ForVersion returned null).
  virtual void Finished(const RequestOutcome&, VersionObserver* /*own*/) {}
  // Every explicit model load or unload (action "load" / "unload"), once as the core takes it (a refused one
  // too), then once finished with `status` (on the control thread, or the caller's when refused at once).
  virtual void ControlStarted(std::string_view /*action*/, const std::string& /*model*/) {}
  virtual void ControlFinished(std::string_view /*action*/, const std::string& /*model*/, const Status&) {}
};

// A version's observers, as the scheduler and the server call them: each call goes to every observer that
// watches inside versions, in the order they were added.
class VersionObservers final {
 public:
  // `own[i]` is observer i's VersionObserver (null: it watches nothing inside versions).
  explicit VersionObservers(std::vector<std::shared_ptr<VersionObserver>> own);
  VersionObservers() = default;

  void Decoded(const InferRequest& r) const {
    for (VersionObserver* o : active_) o->Decoded(r);
  }
  void Queued(const InferRequest& r) const {
    for (VersionObserver* o : active_) o->Queued(r);
  }
  void LeftQueue(size_t count) const {
    for (VersionObserver* o : active_) o->LeftQueue(count);
  }
  void Started(const InferRequest& r) const {
    for (VersionObserver* o : active_) o->Started(r);
  }
  void Executed(const ExecutionReport& e) const {
    for (VersionObserver* o : active_) o->Executed(e);
  }
  bool wants_payload() const { return !payload_.empty(); }
  void Payload(const InferRequest& r, const InferResponse* response) const {
    for (VersionObserver* o : payload_) o->Payload(r, response);
  }
  void Succeeded(const InferRequest& r, const ExecutionReport& e, Clock::time_point now) const {
    for (VersionObserver* o : active_) o->Succeeded(r, e, now);
  }
  void Failed(const InferRequest& r, FailReason reason, Clock::time_point now) const {
    for (VersionObserver* o : active_) o->Failed(r, reason, now);
  }
  void Encoded(Clock::duration d) const {
    for (VersionObserver* o : active_) o->Encoded(d);
  }
  // The first observer's statistics that has them; null when none keeps any.
  std::shared_ptr<const ModelStatistics> statistics() const;
  // Observer i's own VersionObserver (null past the end).
  VersionObserver* own(size_t i) const { return i < own_.size() ? own_[i].get() : nullptr; }

 private:
  std::vector<std::shared_ptr<VersionObserver>> own_;  // one per RequestObserver, nulls kept
  std::vector<VersionObserver*> active_;               // the non-null ones
  std::vector<VersionObserver*> payload_;              // those that want payloads
};

// The core's one list of observers. Filled before serving starts (Add is not synchronised with the rest);
// observers are not owned and must outlive the repository and the server that use the list.
class RequestObservers final {
 public:
  void Add(RequestObserver* observer) { observers_.push_back(observer); }
  std::shared_ptr<const VersionObservers> ForVersion(const ModelSettings& model, int64_t version) const;
  // The first observer's judgement that is not kUnknown; kUnknown when no observer reads `key`.
  StatusOr<ParameterUse> CheckParameter(const std::string& key, const std::string& value) const;
  void Received(const InferRequest& r) const {
    for (RequestObserver* o : observers_) o->Received(r);
  }
  // `version` is the request's version's observers (null when none was resolved).
  void Finished(const RequestOutcome& outcome, const VersionObservers* version) const {
    for (size_t i = 0; i < observers_.size(); ++i)
      observers_[i]->Finished(outcome, version ? version->own(i) : nullptr);
  }
  void ControlStarted(std::string_view action, const std::string& model) const {
    for (RequestObserver* o : observers_) o->ControlStarted(action, model);
  }
  void ControlFinished(std::string_view action, const std::string& model, const Status& status) const {
    for (RequestObserver* o : observers_) o->ControlFinished(action, model, status);
  }

 private:
  std::vector<RequestObserver*> observers_;
};

}  // namespace serving
