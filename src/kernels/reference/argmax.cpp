#include "kernels/argmax.h"

#include <cmath>

namespace jagged::kernels::reference {

void argmax(const float* x, int64_t rows, int64_t cols, int32_t* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * cols;
    int64_t best = -1;
    for (int64_t i = 0; i < cols; ++i) {
      if (std::isnan(row[i])) continue;
      if (best < 0 || row[i] > row[best]) best = i;
    }
    out[r] = static_cast<int32_t>(best < 0 ? 0 : best);
  }
}

}  // namespace jagged::kernels::reference
