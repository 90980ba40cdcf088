// AccessLog: the request observer (core/request_observer.h) that writes the access log: one JSON line per
// finished request (successful ones sampled, failures always) and per explicit model load/unload
// (docs/logging.md).
#pragma once

#include "core/request_observer.h"

namespace serving {

class AccessLog final : public RequestObserver {
 public:
  // `sample_rate`: the fraction of successful requests logged (Triton-free option --access-log-sample-rate).
  explicit AccessLog(double sample_rate) : sample_rate_(sample_rate) {}

  void Finished(const RequestOutcome& outcome, VersionObserver* own) override;
  void ControlFinished(std::string_view action, const std::string& model, const Status& status) override;

 private:
  const double sample_rate_;
};

}  // namespace serving
