#include "kernels/argmax.h"
#include "jagged/ops.h"

namespace jagged::ops {

std::vector<int32_t> argmax(const Tensor& x) {
  if (!x.defined() || x.rank() != 2 || x.dtype() != DType::f32) {
    throw InvalidArgument(concat("argmax: x must be [rows, cols] f32, got ", shape_string(x.shape())));
  }
  if (x.dim(1) == 0) throw InvalidArgument(concat("argmax: rows of ", shape_string(x.shape()), " are empty"));
  if (x.dim(1) > INT32_MAX) throw InvalidArgument(concat("argmax: ", x.dim(1), " columns exceed int32 indices"));
  std::vector<int32_t> indices(static_cast<size_t>(x.dim(0)));
  kernels::cpu::argmax(x.data<float>(), x.dim(0), x.dim(1), indices.data());
  return indices;
}

int32_t argmax(std::span<const float> row) {
  if (row.empty()) throw InvalidArgument("argmax: the row is empty");
  if (row.size() > INT32_MAX) throw InvalidArgument(concat("argmax: ", row.size(), " columns exceed int32 indices"));
  int32_t index = 0;
  kernels::cpu::argmax(row.data(), 1, static_cast<int64_t>(row.size()), &index);
  return index;
}

}  // namespace jagged::ops
