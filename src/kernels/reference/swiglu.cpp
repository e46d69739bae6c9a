#include "kernels/swiglu.h"

#include <cmath>

namespace jagged::kernels::reference {

void swiglu(const float* gate_up, int64_t rows, int64_t ffn_dim, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* gate = gate_up + r * 2 * ffn_dim;
    const float* up = gate + ffn_dim;
    for (int64_t j = 0; j < ffn_dim; ++j) {
      const double g = gate[j];
      out[r * ffn_dim + j] = static_cast<float>(g / (1.0 + std::exp(-g)) * up[j]);
    }
  }
}

}  // namespace jagged::kernels::reference
