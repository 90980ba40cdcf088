// libFuzzer target: a model's config.pbtxt as the repository reads it (core/model_config.h): protobuf's text
// format into Triton's ModelConfig, defaults, our checks, the label file it may name, and the named backend's
// own parameter checks (the tree backend, and a stand-in registered as the default), then the reconciliation
// with a model file's signature. Files in a repository are outside input: no config may crash, leak or hang.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "backends/trees/trees_backend.h"
#include "core/model_config.h"
#include "core/testing/fake_backend.h"
#include "fuzz_support.h"

namespace {

const serving::BackendRegistry& Backends() {
  static const serving::BackendRegistry* registry = [] {
    auto* r = new serving::BackendRegistry();
    r->Register("fake", std::make_unique<serving::testing::FakeBackend>());
    r->SetDefault("fake");
    serving::trees::Register(r);
    return r;
  }();
  return *registry;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  serving::fuzzing::Signature();
  const std::string text(reinterpret_cast<const char*>(data), size);
  // One file beside the config: labels.txt (three labels); any other name is missing.
  auto read = [](const std::string& file, size_t max_bytes) -> serving::StatusOr<std::string> {
    if (file == "labels.txt") return std::string("cat\ndog\nbird\n").substr(0, max_bytes);
    return serving::NotFound("no file '" + file + "'");
  };
  auto settings = serving::ParseModelConfig(text, "m/config.pbtxt", "m", read, Backends());
  if (!settings.ok()) return 0;
  serving::fuzzing::Accepted();
  (void)serving::ReconcileSignature(serving::fuzzing::Signature(), &settings.value());
  return 0;
}
