#include "kernels/add.h"

#include "core/threads.h"
#include "kernels/cpu/vector_math.h"

namespace jagged::kernels::cpu {

void add(float* x, const float* y, int64_t count) {
  core::parallel_rows(count, 1 << 15, [&](int64_t begin, int64_t end) {
    vec::transform2(x + begin, y + begin, x + begin, end - begin,
                    [](vec::FloatVec a, vec::FloatVec b) { return vec::hn::Add(a, b); });
  });
}

}  // namespace jagged::kernels::cpu
