// InferenceServer: the core's front door. Frontends call Infer() with a decoded request; the server
// resolves the model version, validates the inputs against its signature, queues the request on the
// version's scheduler, and calls back with the response. It owns the cross-cutting parts of a request:
// ids, the in-flight count that SIGTERM draining waits on, the access log line and request metrics.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "core/infer_request.h"
#include "core/model_repository.h"
#include "observability/metrics.h"

namespace serving {

class InferenceServer {
 public:
  struct Options {
    std::string default_model;        // empty: the alphabetically first model
    double access_log_sample_rate = 1.0;  // fraction of successful requests logged; failures always are
  };

  InferenceServer(Options options, ModelRepository* repository, Metrics* metrics);

  // Asynchronous; `done` runs exactly once, possibly before Infer returns (on errors) or on a worker thread.
  void Infer(InferRequest request, InferCallback done);
  // Runs on exactly `version`, which the frontend already resolved (e.g. to decode against its
  // signature), so a version swap in between cannot fail the request.
  void Infer(std::shared_ptr<ModelVersion> version, InferRequest request, InferCallback done);

  // Resolves `model` (the default model when empty) and `version` (newest ready when empty).
  StatusOr<std::shared_ptr<ModelVersion>> Resolve(const std::string& model, const std::string& version) const;
  std::string DefaultModel() const;

  bool Live() const { return true; }
  // Ready to take traffic: every model has a ready version and the server is not draining.
  bool Ready() const { return !draining_.load() && repository_->AllReady(); }
  // Readiness turns false; requests are still served (the frontends stop accepting new connections).
  void BeginDrain() { draining_.store(true); }
  bool draining() const { return draining_.load(); }
  // Waits until no request is in flight or the deadline passes; returns whether it drained.
  bool WaitIdle(Clock::time_point deadline);
  // The last step of a shutdown: waits like WaitIdle(), then admits nothing more, atomically with seeing
  // the server idle, so no request can start after it returns (later ones fail with UNAVAILABLE). A
  // frontend may still dispatch requests on open connections until it stops; they must not outlive us.
  bool Close(Clock::time_point deadline);
  int64_t inflight() const { return inflight_.load(); }

  // Accounts (metrics, access log) for a request a frontend rejected while decoding it, so every
  // failure is counted the same way whichever layer caught it. An empty trace id or request id is
  // generated; `model`/`version` stay empty when the model was not resolved.
  void Reject(const Status& status, const std::string& protocol, const std::string& trace_id,
              const std::string& id = "", const std::string& model = "", const std::string& version = "");

  ModelRepository& repository() { return *repository_; }
  const ModelRepository& repository() const { return *repository_; }
  Metrics* metrics() { return metrics_; }

 private:
  void Run(StatusOr<std::shared_ptr<ModelVersion>> version, InferRequest request, InferCallback done);
  // Counts and logs a finished request (after its reply was handed to the frontend).
  void Finish(const InferRequest& request, const std::string& model, const std::string& version,
              const Status& status, Metrics::ModelSeries* series);
  // Starts a request's in-flight accounting; false once Close() has returned.
  bool Admit();
  // Ends a request's in-flight accounting; called after its callback has run.
  void Release();

  const Options options_;
  ModelRepository* const repository_;
  Metrics* const metrics_;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> inflight_{0};
  std::mutex idle_mu_;
  std::condition_variable idle_cv_;
  bool closed_ = false;  // guarded by idle_mu_
};

// A W3C trace id (32 lowercase hex chars) from a `traceparent` value; empty when malformed.
std::string TraceIdFromTraceparent(std::string_view traceparent);
// 32 random lowercase hex chars.
std::string NewTraceId();

}  // namespace serving
