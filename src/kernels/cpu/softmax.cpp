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

// The largest of x[0, n), n > 0.
template <class D, typename T>
T row_max(D d, const T* x, int64_t n) {
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  auto max_vec = hn::Set(d, static_cast<T>(-INFINITY));
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) max_vec = hn::Max(max_vec, hn::LoadU(d, x + i));
  T max_value = hn::GetLane(hn::MaxOfLanes(d, max_vec));
  for (; i < n; ++i) max_value = std::max(max_value, x[i]);
  return max_value;
}

// x[i] = f(x[i]) over [begin, end), whole vectors in place and the tail through the same f on a copy padded with
// -inf, so every element gets the same approximation (f must map -inf to values its caller ignores, e.g. exp 0).
template <class D, typename T, class F>
void map_padded(D d, T* x, int64_t begin, int64_t end, const F& f) {
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = begin;
  for (; i + lanes <= end; i += lanes) hn::StoreU(f(hn::LoadU(d, x + i)), d, x + i);
  if (i < end) {
    HWY_ALIGN T tail[HWY_MAX_BYTES / sizeof(T)];
    std::fill_n(tail, lanes, static_cast<T>(-INFINITY));
    const size_t bytes = static_cast<size_t>(end - i) * sizeof(T);
    std::memcpy(tail, x + i, bytes);
    hn::Store(f(hn::Load(d, tail)), d, tail);
    std::memcpy(x + i, tail, bytes);
  }
}

void softmax_row(float* x, int64_t cols) {
  const hn::ScalableTag<float> d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  // exp(x - max) is written in place while summing (the padding's exp is 0).
  const auto shift = hn::Set(d, row_max(d, x, cols));
  auto sum_vec = hn::Zero(d);
  map_padded(d, x, 0, cols, [&](auto value) {
    const auto e = hn::Exp(d, hn::Sub(value, shift));
    sum_vec = hn::Add(sum_vec, e);
    return e;
  });
  const auto inv_sum = hn::Set(d, 1.0f / hn::GetLane(hn::SumOfLanes(d, sum_vec)));
  int64_t i = 0;
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
  static_assert(kWeightBlock % 8 == 0);
  const auto shift = hn::Set(d, row_max(d, x, n));
  const auto divisor_vec = hn::Set(d, divisor);
  const auto floor_vec = hn::Set(d, floor);
  for (int64_t block = 0; block < weight_blocks(n); ++block) {
    const int64_t begin = block * kWeightBlock;
    auto sum = hn::Zero(d);
    // The padding's weight is 0: it adds nothing to the sum, whatever the floor.
    map_padded(d, x, begin, std::min(n, begin + kWeightBlock), [&](auto value) {
      const auto e = hn::Exp(d, hn::Div(hn::Sub(value, shift), divisor_vec));
      sum = hn::Add(sum, hn::IfThenElseZero(hn::Ge(e, floor_vec), e));
      return e;
    });
    block_sums[block] = hn::GetLane(hn::SumOfLanes(d, sum));
  }
}

}  // namespace jagged::kernels::cpu
