#include "kernels/softmax.h"

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

}  // namespace jagged::kernels::reference
