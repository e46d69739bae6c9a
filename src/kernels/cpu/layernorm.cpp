#include "kernels/layernorm.h"

#include <algorithm>
#include <cmath>

#include <hwy/highway.h>

#include "core/threads.h"

namespace jagged::kernels::cpu {
namespace hn = hwy::HWY_NAMESPACE;

namespace {

// Two-pass mean and variance (no E[x^2] - E[x]^2 cancellation), then one pass to normalise.
void layernorm_row(const float* x, const float* weight, const float* bias, int64_t dim, float eps, float* out) {
  const hn::ScalableTag<float> d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  auto sum_vec = hn::Zero(d);
  int64_t i = 0;
  for (; i + lanes <= dim; i += lanes) sum_vec = hn::Add(sum_vec, hn::LoadU(d, x + i));
  float sum = hn::GetLane(hn::SumOfLanes(d, sum_vec));
  for (; i < dim; ++i) sum += x[i];
  const float mean = sum / static_cast<float>(dim);

  const auto mean_vec = hn::Set(d, mean);
  auto squares_vec = hn::Zero(d);
  i = 0;
  for (; i + lanes <= dim; i += lanes) {
    const auto centered = hn::Sub(hn::LoadU(d, x + i), mean_vec);
    squares_vec = hn::MulAdd(centered, centered, squares_vec);
  }
  float sum_squares = hn::GetLane(hn::SumOfLanes(d, squares_vec));
  for (; i < dim; ++i) sum_squares += (x[i] - mean) * (x[i] - mean);
  const float inv_std = 1.0f / std::sqrt(sum_squares / static_cast<float>(dim) + eps);

  const auto scale = hn::Set(d, inv_std);
  i = 0;
  for (; i + lanes <= dim; i += lanes) {
    const auto normalized = hn::Mul(hn::Sub(hn::LoadU(d, x + i), mean_vec), scale);
    hn::StoreU(hn::MulAdd(normalized, hn::LoadU(d, weight + i), hn::LoadU(d, bias + i)), d, out + i);
  }
  for (; i < dim; ++i) out[i] = (x[i] - mean) * inv_std * weight[i] + bias[i];
}

}  // namespace

void layernorm(const float* x, const float* weight, const float* bias, int64_t rows, int64_t dim, float eps,
               float* out) {
  // Each row is reduced alone, in an order fixed by dim: results do not depend on the batch.
  const int64_t min_rows = std::max<int64_t>(1, (1 << 13) / std::max<int64_t>(dim, 1));
  core::parallel_rows(rows, min_rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) layernorm_row(x + r * dim, weight, bias, dim, eps, out + r * dim);
  });
}

}  // namespace jagged::kernels::cpu
