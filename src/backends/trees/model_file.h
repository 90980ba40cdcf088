// A tree model file as a library saved it, read into a checked Forest: the one way the backend, the
// benchmark's C interface and the tests load one (bounded in size, the parser picked by format).
#pragma once

#include <filesystem>

#include "backends/trees/forest.h"

namespace serving::trees {

enum class Format { kLightGbm, kXgboostJson, kXgboostUbjson };

// Files past this size are refused before they are read (the largest forests are tens of megabytes).
inline constexpr std::uintmax_t kMaxModelFileBytes = 1ull << 30;

// By extension: .json is XGBoost JSON, .ubj XGBoost UBJSON, anything else LightGBM text.
Format FormatOfExtension(const std::filesystem::path& file);

// The file parsed as `format`. A missing or unreadable file is NOT_FOUND; one that is too large or does
// not parse is INVALID_ARGUMENT, its message starting with the path.
StatusOr<Forest> LoadModelFile(const std::filesystem::path& file, Format format);

}  // namespace serving::trees
