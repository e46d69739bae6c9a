#include "kernels/swiglu.h"

#include <algorithm>

#include "core/threads.h"
#include "kernels/cpu/vector_math.h"

namespace jagged::kernels::cpu {

void swiglu(const float* gate_up, int64_t rows, int64_t ffn_dim, float* out) {
  const int64_t min_rows = std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(ffn_dim, 1));
  core::parallel_rows(rows, min_rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* gate = gate_up + r * 2 * ffn_dim;
      vec::transform2(gate, gate + ffn_dim, out + r * ffn_dim, ffn_dim,
                      [](vec::FloatVec g, vec::FloatVec u) { return vec::hn::Mul(vec::silu(g), u); });
    }
  });
}

}  // namespace jagged::kernels::cpu
