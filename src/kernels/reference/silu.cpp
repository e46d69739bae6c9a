#include "kernels/silu.h"

#include <cmath>

namespace jagged::kernels::reference {

void silu(float* x, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    const double value = x[i];
    x[i] = static_cast<float>(value / (1.0 + std::exp(-value)));
  }
}

}  // namespace jagged::kernels::reference
