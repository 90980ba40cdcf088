#include "core/request_observer.h"

namespace serving {

VersionObservers::VersionObservers(std::vector<std::shared_ptr<VersionObserver>> own) : own_(std::move(own)) {
  for (const auto& o : own_) {
    if (!o) continue;
    active_.push_back(o.get());
    if (o->wants_payload()) payload_.push_back(o.get());
  }
}

std::shared_ptr<const ModelStatistics> VersionObservers::statistics() const {
  for (VersionObserver* o : active_)
    if (auto stats = o->statistics()) return stats;
  return nullptr;
}

std::shared_ptr<const VersionObservers> RequestObservers::ForVersion(const ModelSettings& model,
                                                                     int64_t version) const {
  std::vector<std::shared_ptr<VersionObserver>> own;
  own.reserve(observers_.size());
  for (RequestObserver* o : observers_) own.push_back(o->ForVersion(model, version));
  return std::make_shared<const VersionObservers>(std::move(own));
}

StatusOr<ParameterUse> RequestObservers::CheckParameter(const std::string& key, const std::string& value) const {
  for (RequestObserver* o : observers_) {
    SERVING_ASSIGN_OR_RETURN(ParameterUse use, o->CheckParameter(key, value));
    if (use.kind != ParameterUse::kUnknown) return use;
  }
  return ParameterUse{};
}

}  // namespace serving
