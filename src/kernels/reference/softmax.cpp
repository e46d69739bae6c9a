#include "kernels/softmax.h"

#include <algorithm>
#include <cmath>

namespace jagged::kernels::reference {

void softmax(float* x, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x + r * cols;
    double max_value = -INFINITY;
    for (int64_t i = 0; i < cols; ++i) max_value = std::fmax(max_value, row[i]);
    double sum = 0.0;
    for (int64_t i = 0; i < cols; ++i) sum += std::exp(row[i] - max_value);
    for (int64_t i = 0; i < cols; ++i) row[i] = static_cast<float>(std::exp(row[i] - max_value) / sum);
  }
}

void sampling_weights(double* x, int64_t n, double divisor, double floor, double* block_sums) {
  const double shift = *std::max_element(x, x + n);
  for (int64_t block = 0; block < weight_blocks(n); ++block) {
    double sum = 0.0;
    for (int64_t i = block * kWeightBlock; i < std::min(n, (block + 1) * kWeightBlock); ++i) {
      x[i] = std::exp((x[i] - shift) / divisor);
      if (x[i] >= floor) sum += x[i];
    }
    block_sums[block] = sum;
  }
}

}  // namespace jagged::kernels::reference
