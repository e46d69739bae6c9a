#include "kernels/layernorm.h"

#include <cmath>

namespace jagged::kernels::reference {

void layernorm(const float* x, const float* weight, const float* bias, int64_t rows, int64_t dim, float eps,
               float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * dim;
    double sum = 0.0;
    for (int64_t i = 0; i < dim; ++i) sum += row[i];
    const double mean = sum / static_cast<double>(dim);
    double sum_squares = 0.0;
    for (int64_t i = 0; i < dim; ++i) sum_squares += (row[i] - mean) * (row[i] - mean);
    const double inv_std = 1.0 / std::sqrt(sum_squares / static_cast<double>(dim) + eps);
    for (int64_t i = 0; i < dim; ++i) {
      out[r * dim + i] = static_cast<float>((row[i] - mean) * inv_std * weight[i] + bias[i]);
    }
  }
}

}  // namespace jagged::kernels::reference
