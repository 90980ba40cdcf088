#include "frontends/grpc/health_service.h"

#include <deque>

namespace serving::frontends {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// One Watch call: writes the statuses it is handed one at a time, in order, and ends on Close() or when the
// client leaves. Deletes itself when gRPC is done with it, after leaving the service's list (so the service,
// which calls it only under its own lock, never reaches a deleted watcher). gRPC runs an application reactor's
// reactions on its own threads, never inside Finish() or StartWrite(), so calling those under a lock is safe.
class HealthService::Watcher final : public grpc::ServerWriteReactor<HealthCheckResponse> {
 public:
  Watcher(HealthService* service, std::string name) : service_(service), name_(std::move(name)) {}

  const std::string& name() const { return name_; }

  // Queues `status` to be written (skipped when it is the last one queued or written).
  void Send(HealthCheckResponse::ServingStatus status) {
    MutexLock lock(mu_);
    if (closing_ || status == last_) return;
    last_ = status;
    HealthCheckResponse response;
    response.set_status(status);
    pending_.push_back(std::move(response));
    WriteNextLocked();
  }

  // Ends the call at once with `status` (a refusal).
  void Fail(const grpc::Status& status) {
    MutexLock lock(mu_);
    closing_ = true;
    FinishLocked(status);
  }

  // Ends the call once what is queued is written.
  void Close() {
    MutexLock lock(mu_);
    closing_ = true;
    if (!writing_) FinishLocked(grpc::Status::OK);
  }

  void OnWriteDone(bool ok) override {
    MutexLock lock(mu_);
    writing_ = false;
    pending_.pop_front();
    if (!ok) return FinishLocked(grpc::Status::CANCELLED);
    if (!pending_.empty()) return WriteNextLocked();
    if (closing_) FinishLocked(grpc::Status::OK);
  }

  void OnCancel() override {
    MutexLock lock(mu_);
    closing_ = true;
    if (!writing_) FinishLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    service_->Forget(this);
    delete this;
  }

 private:
  void WriteNextLocked() REQUIRES(mu_) {
    if (writing_ || pending_.empty()) return;
    writing_ = true;
    StartWrite(&pending_.front());
  }
  void FinishLocked(const grpc::Status& status) REQUIRES(mu_) {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  HealthService* const service_;
  const std::string name_;
  Mutex mu_;
  std::deque<HealthCheckResponse> pending_ GUARDED_BY(mu_);  // the front one is being written when writing_
  HealthCheckResponse::ServingStatus last_ GUARDED_BY(mu_) = HealthCheckResponse::UNKNOWN;
  bool writing_ GUARDED_BY(mu_) = false;
  bool closing_ GUARDED_BY(mu_) = false;
  bool finished_ GUARDED_BY(mu_) = false;
};

HealthService::ServingStatus HealthService::StatusOf(const std::string& service) const {
  if (shut_down_) return HealthCheckResponse::NOT_SERVING;
  auto it = serving_.find(service);
  if (it == serving_.end()) return HealthCheckResponse::SERVICE_UNKNOWN;
  return it->second ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
}

void HealthService::SetStatus(const std::string& service, bool serving) {
  MutexLock lock(mu_);
  if (shut_down_) return;
  serving_[service] = serving;
  for (Watcher* w : watchers_)
    if (w->name() == service) w->Send(StatusOf(service));
}

void HealthService::Shutdown() {
  MutexLock lock(mu_);
  shut_down_ = true;
  for (Watcher* w : watchers_) {
    w->Send(HealthCheckResponse::NOT_SERVING);
    w->Close();
  }
}

void HealthService::Forget(Watcher* watcher) {
  MutexLock lock(mu_);
  watchers_.erase(watcher);
}

grpc::ServerUnaryReactor* HealthService::Check(grpc::CallbackServerContext* ctx, const HealthCheckRequest* request,
                                               HealthCheckResponse* response) {
  if (auto* refused = gate_.Refuse(ctx, "Check")) return refused;
  auto* reactor = ctx->DefaultReactor();
  MutexLock lock(mu_);
  const ServingStatus status = StatusOf(request->service());
  if (status == HealthCheckResponse::SERVICE_UNKNOWN) {
    reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service '" + request->service() + "'"));
    return reactor;
  }
  response->set_status(status);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<HealthCheckResponse>* HealthService::Watch(grpc::CallbackServerContext* ctx,
                                                                    const HealthCheckRequest* request) {
  auto* watcher = new Watcher(this, request->service());
  const grpc::Status allowed = gate_.Check(ctx, "Watch");
  MutexLock lock(mu_);
  watchers_.insert(watcher);
  if (!allowed.ok()) {
    watcher->Fail(allowed);
    return watcher;
  }
  watcher->Send(StatusOf(request->service()));
  if (shut_down_) watcher->Close();
  return watcher;
}

}  // namespace serving::frontends
