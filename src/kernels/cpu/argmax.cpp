#include "kernels/argmax.h"

#include <algorithm>
#include <cmath>

#include <hwy/highway.h>

#include "core/threads.h"

namespace jagged::kernels::cpu {
namespace hn = hwy::HWY_NAMESPACE;

namespace {

// Two passes: the row's largest non-NaN value, then the first index holding it (first on ties).
int32_t argmax_row(const float* x, int64_t cols) {
  const hn::ScalableTag<float> d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  auto max_vec = hn::Set(d, -INFINITY);
  int64_t i = 0;
  for (; i + lanes <= cols; i += lanes) {
    const auto v = hn::LoadU(d, x + i);
    max_vec = hn::IfThenElse(hn::Gt(v, max_vec), v, max_vec);  // a NaN compares false: skipped
  }
  float max_value = hn::GetLane(hn::MaxOfLanes(d, max_vec));
  for (; i < cols; ++i) max_value = x[i] > max_value ? x[i] : max_value;

  const auto target = hn::Set(d, max_value);
  i = 0;
  for (; i + lanes <= cols; i += lanes) {
    const intptr_t lane = hn::FindFirstTrue(d, hn::Eq(hn::LoadU(d, x + i), target));
    if (lane >= 0) return static_cast<int32_t>(i + lane);
  }
  for (; i < cols; ++i) {
    if (x[i] == max_value) return static_cast<int32_t>(i);
  }
  return 0;  // only NaNs
}

}  // namespace

void argmax(const float* x, int64_t rows, int64_t cols, int32_t* out) {
  const int64_t min_rows = std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(cols, 1));
  core::parallel_rows(rows, min_rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) out[r] = argmax_row(x + r * cols, cols);
  });
}

}  // namespace jagged::kernels::cpu
