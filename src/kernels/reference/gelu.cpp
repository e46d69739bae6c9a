#include "kernels/gelu.h"

#include <cmath>
#include <numbers>

namespace jagged::kernels::reference {

void gelu_erf(float* x, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    const double value = x[i];
    // 0.5 * (1 + erf(v / sqrt 2)) written with erfc, which keeps its relative accuracy for v << 0.
    x[i] = static_cast<float>(0.5 * value * std::erfc(-value / std::numbers::sqrt2));
  }
}

void gelu_tanh(float* x, int64_t count) {
  const double sqrt_2_over_pi = std::sqrt(2.0 / std::numbers::pi);
  for (int64_t i = 0; i < count; ++i) {
    const double value = x[i];
    const double inner = sqrt_2_over_pi * (value + 0.044715 * value * value * value);
    x[i] = static_cast<float>(0.5 * value * (1.0 + std::tanh(inner)));
  }
}

}  // namespace jagged::kernels::reference
