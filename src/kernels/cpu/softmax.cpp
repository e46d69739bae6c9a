#include "kernels/softmax.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>

#include "core/threads.h"

namespace jagged::kernels::cpu {
namespace hn = hwy::HWY_NAMESPACE;

namespace {

void softmax_row(float* x, int64_t cols) {
  const hn::ScalableTag<float> d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  auto max_vec = hn::Set(d, -INFINITY);
  int64_t i = 0;
  for (; i + lanes <= cols; i += lanes) max_vec = hn::Max(max_vec, hn::LoadU(d, x + i));
  float max_value = hn::GetLane(hn::MaxOfLanes(d, max_vec));
  for (; i < cols; ++i) max_value = std::max(max_value, x[i]);

  // exp(x - max) is written in place while summing; the tail runs through the same vector Exp on a copy
  // padded with -inf (exp = 0), so every element gets the same approximation.
  const auto shift = hn::Set(d, max_value);
  auto sum_vec = hn::Zero(d);
  i = 0;
  for (; i + lanes <= cols; i += lanes) {
    const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, x + i), shift));
    hn::StoreU(e, d, x + i);
    sum_vec = hn::Add(sum_vec, e);
  }
  if (i < cols) {
    HWY_ALIGN float tail[HWY_MAX_BYTES / sizeof(float)];
    std::fill_n(tail, lanes, -INFINITY);
    const size_t bytes = static_cast<size_t>(cols - i) * sizeof(float);
    std::memcpy(tail, x + i, bytes);
    const auto e = hn::Exp(d, hn::Sub(hn::Load(d, tail), shift));
    hn::Store(e, d, tail);
    std::memcpy(x + i, tail, bytes);
    sum_vec = hn::Add(sum_vec, e);
  }
  const auto inv_sum = hn::Set(d, 1.0f / hn::GetLane(hn::SumOfLanes(d, sum_vec)));
  i = 0;
  for (; i + lanes <= cols; i += lanes) hn::StoreU(hn::Mul(hn::LoadU(d, x + i), inv_sum), d, x + i);
  const float inv = hn::GetLane(inv_sum);
  for (; i < cols; ++i) x[i] *= inv;
}

}  // namespace

void softmax(float* x, int64_t rows, int64_t cols) {
  const int64_t min_rows = std::max<int64_t>(1, (1 << 13) / std::max<int64_t>(cols, 1));
  core::parallel_rows(rows, min_rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) softmax_row(x + r * cols, cols);
  });
}

// Vector lanes of doubles, summed lane-wise within a block and then across lanes: a fixed order for a given n
// (the reference sums in element order; the two agree to rounding).
void sampling_weights(double* x, int64_t n, double divisor, double floor, double* block_sums) {
  const hn::ScalableTag<double> d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  static_assert(kWeightBlock % 8 == 0);
  auto max_vec = hn::Set(d, -INFINITY);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) max_vec = hn::Max(max_vec, hn::LoadU(d, x + i));
  double shift = hn::GetLane(hn::MaxOfLanes(d, max_vec));
  for (; i < n; ++i) shift = std::max(shift, x[i]);
  const auto shift_vec = hn::Set(d, shift);
  const auto divisor_vec = hn::Set(d, divisor);
  const auto floor_vec = hn::Set(d, floor);
  const auto weight = [&](hn::Vec<decltype(d)> value, hn::Vec<decltype(d)>& sum) {
    const auto e = hn::Exp(d, hn::Div(hn::Sub(value, shift_vec), divisor_vec));
    sum = hn::Add(sum, hn::IfThenElseZero(hn::Ge(e, floor_vec), e));
    return e;
  };
  for (int64_t block = 0; block < weight_blocks(n); ++block) {
    const int64_t begin = block * kWeightBlock;
    const int64_t end = std::min(n, begin + kWeightBlock);
    auto sum = hn::Zero(d);
    int64_t i = begin;
    for (; i + lanes <= end; i += lanes) hn::StoreU(weight(hn::LoadU(d, x + i), sum), d, x + i);
    if (i < end) {  // the tail through the same vector Exp, padded with -inf (weight 0, below any floor > 0)
      HWY_ALIGN double tail[HWY_MAX_BYTES / sizeof(double)];
      std::fill_n(tail, lanes, -INFINITY);
      const size_t bytes = static_cast<size_t>(end - i) * sizeof(double);
      std::memcpy(tail, x + i, bytes);
      hn::Store(weight(hn::Load(d, tail), sum), d, tail);
      std::memcpy(x + i, tail, bytes);
    }
    block_sums[block] = hn::GetLane(hn::SumOfLanes(d, sum));
  }
}

}  // namespace jagged::kernels::cpu
