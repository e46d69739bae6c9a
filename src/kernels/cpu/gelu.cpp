#include "kernels/gelu.h"

#include "core/threads.h"
#include "kernels/cpu/vector_math.h"

namespace jagged::kernels::cpu {

void gelu_erf(float* x, int64_t count) {
  core::parallel_rows(count, 1 << 14, [&](int64_t begin, int64_t end) {
    vec::transform(x + begin, end - begin, [](vec::FloatVec v) { return vec::gelu_erf(v); });
  });
}

void gelu_tanh(float* x, int64_t count) {
  core::parallel_rows(count, 1 << 14, [&](int64_t begin, int64_t end) {
    vec::transform(x + begin, end - begin, [](vec::FloatVec v) { return vec::gelu_tanh(v); });
  });
}

}  // namespace jagged::kernels::cpu
