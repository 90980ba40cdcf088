// libFuzzer targets for the tree model parsers (make fuzz; docs/testing.md#fuzzing). Whatever the bytes, a
// parser either refuses them with a Status or returns a Forest that Check() accepted; such a forest is then
// evaluated on rows with NaN, infinities, zeros and huge values, by the reference evaluator and the fast one
// (whose margins must be the same bits), under AddressSanitizer and UBSan, so an index the checks missed is an
// out-of-bounds read here. Built three times: -DFUZZ_LIGHTGBM, -DFUZZ_XGBOOST,
// -DFUZZ_XGBOOST_UBJ.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string_view>
#include <vector>

#include "backends/trees/evaluator.h"
#include "backends/trees/lightgbm_model.h"
#include "backends/trees/xgboost_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
#if defined(FUZZ_LIGHTGBM)
  auto forest = serving::trees::ParseLightGbm(text);
#elif defined(FUZZ_XGBOOST_UBJ)
  auto forest = serving::trees::ParseXgboostUbjson(text);
#else
  auto forest = serving::trees::ParseXgboostJson(text);
#endif
  if (!forest.ok() || forest->num_features > 4096 || forest->num_outputs > 4096) return 0;
  const float values[] = {0.0f,
                          -0.0f,
                          1.0f,
                          -1.0f,
                          0.5f,
                          1e-35f,
                          1e20f,
                          -1e20f,
                          2147483648.0f,
                          std::numeric_limits<float>::quiet_NaN(),
                          std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity()};
  constexpr size_t kRows = sizeof(values) / sizeof(values[0]);
  std::vector<float> rows(kRows * forest->num_features);
  for (size_t r = 0; r < kRows; ++r)
    for (size_t j = 0; j < forest->num_features; ++j) rows[r * forest->num_features + j] = values[(r + j) % kRows];
  std::vector<double> margins(kRows * forest->num_outputs);
  forest->Margins(rows, kRows, margins);
  std::vector<double> fast(margins.size());
  serving::trees::Evaluator(*forest).Margins(rows, kRows, fast);
  if (std::memcmp(fast.data(), margins.data(), margins.size() * sizeof(double)) != 0) std::abort();
  std::vector<double> predictions(kRows * forest->prediction_width());
  forest->Transform(margins, kRows, predictions);
  return 0;
}
