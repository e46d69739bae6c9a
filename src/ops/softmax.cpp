#include "kernels/softmax.h"
#include "jagged/ops.h"

namespace jagged::ops {

void softmax(Tensor& x) {
  if (!x.defined() || x.rank() != 2 || x.dtype() != DType::f32) {
    throw InvalidArgument(concat("softmax: x must be [rows, cols] f32, got ", shape_string(x.shape())));
  }
  kernels::cpu::softmax(x.data<float>(), x.dim(0), x.dim(1));
}

std::vector<double> sampling_weights(std::span<double> scores, double temperature, double floor) {
  if (!(temperature > 0.0)) throw InvalidArgument(concat("sampling_weights: temperature must be > 0, got ", temperature));
  if (scores.empty()) throw InvalidArgument("sampling_weights: no scores");
  const auto n = static_cast<int64_t>(scores.size());
  std::vector<double> block_sums(static_cast<size_t>(kernels::weight_blocks(n)));
  kernels::cpu::sampling_weights(scores.data(), n, temperature, floor, block_sums.data());
  return block_sums;
}

int64_t sampling_weight_block() { return kernels::kWeightBlock; }

}  // namespace jagged::ops
