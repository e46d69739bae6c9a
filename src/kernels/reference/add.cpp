#include "kernels/add.h"

namespace jagged::kernels::reference {

void add(float* x, const float* y, int64_t count) {
  for (int64_t i = 0; i < count; ++i) x[i] += y[i];
}

}  // namespace jagged::kernels::reference
