#include "core/batch.h"

#include <algorithm>
#include <cstring>
#include <memory>

namespace serving {
namespace {

const Tensor* FindInput(const InferRequest& r, const std::string& name) {
  for (const auto& t : r.inputs)
    if (t.name == name) return &t;
  return nullptr;
}

}  // namespace

int64_t RequestRows(const InferRequest& request) {
  for (const auto& t : request.inputs)
    if (!t.shape.empty()) return t.shape[0];
  return 1;
}

bool Stackable(const InferRequest& a, const InferRequest& b) {
  if (a.inputs.size() != b.inputs.size()) return false;
  for (const auto& t : a.inputs) {
    const Tensor* u = FindInput(b, t.name);
    if (!u || u->dtype != t.dtype || t.shape.empty() || u->shape.size() != t.shape.size()) return false;
    if (!std::equal(t.shape.begin() + 1, t.shape.end(), u->shape.begin() + 1)) return false;
  }
  return true;
}

std::vector<Tensor> StackInputs(std::span<const InferRequest* const> requests) {
  std::vector<Tensor> stacked;
  const InferRequest& first = *requests.front();
  stacked.reserve(first.inputs.size());
  for (const auto& t : first.inputs) {
    Shape shape = t.shape;
    shape[0] = 0;
    size_t bytes = 0;
    for (const InferRequest* r : requests) {
      const Tensor* u = FindInput(*r, t.name);
      shape[0] += u->shape[0];
      bytes += u->byte_size;
    }
    // BYTES elements are length-prefixed one after another, so they stack by concatenation too.
    std::vector<std::byte> buffer(bytes);
    size_t offset = 0;
    for (const InferRequest* r : requests) {
      const Tensor* u = FindInput(*r, t.name);
      if (u->byte_size > 0) std::memcpy(buffer.data() + offset, u->data, u->byte_size);
      offset += u->byte_size;
    }
    stacked.push_back(Tensor::Owning(t.name, t.dtype, std::move(shape), std::move(buffer)));
  }
  return stacked;
}

StatusOr<Tensor> SliceRows(const Tensor& t, int64_t first, int64_t rows) {
  if (t.shape.empty() || t.shape[0] < first + rows)
    return Internal("output '" + t.name + "' has shape " + ShapeToString(t.shape) + ", not the " +
                    std::to_string(first + rows) + " rows of its batch: this model cannot be batched");
  const int64_t total = t.shape[0];
  size_t begin = 0, end = 0;
  if (t.dtype == DataType::kBytes) {
    auto elements = SplitBytesElements(t.bytes());
    if (!elements || elements->size() % static_cast<size_t>(total == 0 ? 1 : total) != 0)
      return Internal("output '" + t.name + "' holds malformed BYTES data");
    const size_t per_row = total == 0 ? 0 : elements->size() / static_cast<size_t>(total);
    // Each element is a 4-byte length followed by its bytes: an element starts 4 bytes before its view.
    const auto start_of = [&](size_t e) {
      return e < elements->size()
                 ? static_cast<size_t>((*elements)[e].data() - reinterpret_cast<const char*>(t.data)) - 4
                 : t.byte_size;
    };
    begin = start_of(static_cast<size_t>(first) * per_row);
    end = start_of(static_cast<size_t>(first + rows) * per_row);
  } else {
    const size_t row_bytes = total == 0 ? 0 : t.byte_size / static_cast<size_t>(total);
    begin = static_cast<size_t>(first) * row_bytes;
    end = static_cast<size_t>(first + rows) * row_bytes;
  }
  Shape shape = t.shape;
  shape[0] = rows;
  if (!t.owner) return Tensor::Owning(t.name, t.dtype, std::move(shape), {t.data + begin, t.data + end});
  Tensor slice = Tensor::Borrowed(t.name, t.dtype, std::move(shape), t.data + begin, end - begin);
  slice.owner = t.owner;
  return slice;
}

}  // namespace serving
