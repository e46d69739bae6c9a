#include "kernels/rmsnorm.h"

#include <cmath>

#include <hwy/highway.h>

#include "core/threads.h"

namespace jagged::kernels::cpu {
namespace hn = hwy::HWY_NAMESPACE;

namespace {

void rmsnorm_row(const float* x, const float* weight, int64_t dim, float eps, float* out) {
  const hn::ScalableTag<float> d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  auto sum = hn::Zero(d);
  int64_t i = 0;
  for (; i + lanes <= dim; i += lanes) {
    const auto v = hn::LoadU(d, x + i);
    sum = hn::MulAdd(v, v, sum);
  }
  float sum_squares = hn::GetLane(hn::SumOfLanes(d, sum));
  for (; i < dim; ++i) sum_squares += x[i] * x[i];
  const float inv_rms = 1.0f / std::sqrt(sum_squares / static_cast<float>(dim) + eps);
  const auto scale = hn::Set(d, inv_rms);
  i = 0;
  for (; i + lanes <= dim; i += lanes) {
    hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(d, x + i), scale), hn::LoadU(d, weight + i)), d, out + i);
  }
  for (; i < dim; ++i) out[i] = x[i] * inv_rms * weight[i];
}

}  // namespace

void rmsnorm(const float* x, const float* weight, int64_t rows, int64_t dim, float eps, float* out) {
  // Each row is reduced alone, in a fixed order: results do not depend on the batch (batch invariance).
  core::parallel_rows(rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) rmsnorm_row(x + r * dim, weight, dim, eps, out + r * dim);
  });
}

}  // namespace jagged::kernels::cpu
