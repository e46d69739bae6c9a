#include "models/weight_helpers.h"

#include <cstring>

namespace jagged::models {

const Tensor& require_weight(const WeightMap& weights, const std::string& name, const Shape& shape, const char* family) {
  const auto found = weights.find(name);
  if (found == weights.end()) throw InvalidArgument(concat(family, " weights: missing tensor ", name));
  check_shape(found->second, shape, name.c_str());
  return found->second;
}

Tensor concat_rows(std::initializer_list<const Tensor*> parts) {
  Shape shape = (*parts.begin())->shape();
  shape[0] = 0;
  for (const Tensor* part : parts) shape[0] += part->dim(0);
  Tensor stacked(shape);
  auto* out = static_cast<std::byte*>(stacked.raw_data());
  for (const Tensor* part : parts) {
    std::memcpy(out, part->raw_data(), part->nbytes());
    out += part->nbytes();
  }
  return stacked;
}

Tensor slice_rows(const Tensor& tensor, int64_t begin, int64_t end) {
  Shape shape = tensor.shape();
  shape[0] = end - begin;
  Tensor slice(shape);
  const size_t row_bytes = tensor.nbytes() / static_cast<size_t>(tensor.dim(0));
  std::memcpy(slice.raw_data(), static_cast<const std::byte*>(tensor.raw_data()) + begin * row_bytes, slice.nbytes());
  return slice;
}

std::string layer_name(int layer, const char* suffix) { return concat("blk.", layer, ".", suffix); }

}  // namespace jagged::models
