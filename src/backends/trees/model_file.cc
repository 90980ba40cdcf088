#include "backends/trees/model_file.h"

#include <fstream>
#include <string>

#include "backends/trees/lightgbm_model.h"
#include "backends/trees/xgboost_model.h"

namespace serving::trees {

Format FormatOfExtension(const std::filesystem::path& file) {
  if (file.extension() == ".json") return Format::kXgboostJson;
  if (file.extension() == ".ubj") return Format::kXgboostUbjson;
  return Format::kLightGbm;
}

StatusOr<Forest> LoadModelFile(const std::filesystem::path& file, Format format) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(file, ec);
  if (ec) return NotFound("cannot read " + file.string() + ": " + ec.message());
  if (size > kMaxModelFileBytes)
    return InvalidArgument(file.string() + " is " + std::to_string(size) + " bytes, more than the " +
                           std::to_string(kMaxModelFileBytes) + " a tree model may have");
  std::ifstream in(file, std::ios::binary);
  std::string text(size, '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(size))) return NotFound("cannot read " + file.string());
  auto forest = format == Format::kLightGbm      ? ParseLightGbm(text)
                : format == Format::kXgboostJson ? ParseXgboostJson(text)
                                                 : ParseXgboostUbjson(text);
  if (!forest.ok()) return InvalidArgument(file.string() + ": " + forest.status().message());
  return forest;
}

}  // namespace serving::trees
