#include "kernels/rope.h"

#include <cmath>

namespace jagged::kernels::reference {

void rope(MatrixView x, int64_t num_heads, int64_t head_dim, const int32_t* positions, const float* inv_freq,
          ops::RopePairs pairs) {
  const int64_t half = head_dim / 2;
  for (int64_t t = 0; t < x.rows; ++t) {
    for (int64_t h = 0; h < num_heads; ++h) {
      float* head = x.row(t) + h * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const float angle = static_cast<float>(positions[t]) * inv_freq[i];
        const double cos_angle = std::cos(static_cast<double>(angle));
        const double sin_angle = std::sin(static_cast<double>(angle));
        float& a = pairs == ops::RopePairs::adjacent ? head[2 * i] : head[i];
        float& b = pairs == ops::RopePairs::adjacent ? head[2 * i + 1] : head[i + half];
        const double a0 = a;
        const double b0 = b;
        a = static_cast<float>(a0 * cos_angle - b0 * sin_angle);
        b = static_cast<float>(a0 * sin_angle + b0 * cos_angle);
      }
    }
  }
}

}  // namespace jagged::kernels::reference
