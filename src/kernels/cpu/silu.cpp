#include "kernels/silu.h"

#include "core/threads.h"
#include "kernels/cpu/vector_math.h"

namespace jagged::kernels::cpu {

void silu(float* x, int64_t count) {
  // Elements are independent; chunks only split the work (vec::transform keeps the tail bit-identical).
  core::parallel_rows(count, 1 << 14, [&](int64_t begin, int64_t end) {
    vec::transform(x + begin, end - begin, [](vec::FloatVec v) { return vec::silu(v); });
  });
}

}  // namespace jagged::kernels::cpu
