// Highway helpers shared by the elementwise CPU kernels (silu, gelu, swiglu, add). Static target only.
//
// Batch invariance for elementwise kernels: an element's result must not depend on where a chunk boundary
// or the end of the array falls. So the tail is not computed by scalar code (whose rounding differs from the
// vector code) but by the same vector function on a zero-padded copy.
#pragma once

#include <cstdint>
#include <cstring>

#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>

namespace jagged::kernels::cpu::vec {
namespace hn = hwy::HWY_NAMESPACE;

using FloatTag = hn::ScalableTag<float>;
using FloatVec = hn::Vec<FloatTag>;
inline constexpr size_t kMaxFloatLanes = HWY_MAX_BYTES / sizeof(float);

// x = op(x) on every lane.
template <class Op>
inline void transform(float* x, int64_t count, Op op) {
  const FloatTag d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + lanes <= count; i += lanes) hn::StoreU(op(hn::LoadU(d, x + i)), d, x + i);
  if (i < count) {
    HWY_ALIGN float tail[kMaxFloatLanes] = {};
    const size_t bytes = static_cast<size_t>(count - i) * sizeof(float);
    std::memcpy(tail, x + i, bytes);
    hn::Store(op(hn::Load(d, tail)), d, tail);
    std::memcpy(x + i, tail, bytes);
  }
}

// out = op(a, b) on every lane; out may alias a.
template <class Op>
inline void transform2(const float* a, const float* b, float* out, int64_t count, Op op) {
  const FloatTag d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + lanes <= count; i += lanes) hn::StoreU(op(hn::LoadU(d, a + i), hn::LoadU(d, b + i)), d, out + i);
  if (i < count) {
    HWY_ALIGN float tail_a[kMaxFloatLanes] = {};
    HWY_ALIGN float tail_b[kMaxFloatLanes] = {};
    const size_t bytes = static_cast<size_t>(count - i) * sizeof(float);
    std::memcpy(tail_a, a + i, bytes);
    std::memcpy(tail_b, b + i, bytes);
    hn::Store(op(hn::Load(d, tail_a), hn::Load(d, tail_b)), d, tail_a);
    std::memcpy(out + i, tail_a, bytes);
  }
}

// v * sigmoid(z) = v / (1 + exp(-z)). exp's argument is capped at 88 (exp(88) ~ 1.7e38 is
// finite; hn::Exp is only valid up to +104), which leaves results below 1e-36 in magnitude.
inline FloatVec divide_by_one_plus_exp(FloatVec v, FloatVec minus_z) {
  const FloatTag d;
  const FloatVec e = hn::Exp(d, hn::Min(minus_z, hn::Set(d, 88.0f)));
  return hn::Div(v, hn::Add(hn::Set(d, 1.0f), e));
}

// silu(x) = x / (1 + exp(-x)).
inline FloatVec silu(FloatVec x) { return divide_by_one_plus_exp(x, hn::Neg(x)); }

// gelu_tanh(x) = 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3): the sigmoid
// form avoids the cancellation of 1 + tanh(u) for u << 0.
inline FloatVec gelu_tanh(FloatVec x) {
  const FloatTag d;
  const FloatVec x2 = hn::Mul(x, x);
  const FloatVec inner = hn::Mul(x, hn::MulAdd(x2, hn::Set(d, 0.044715f), hn::Set(d, 1.0f)));
  // -2 * sqrt(2 / pi)
  return divide_by_one_plus_exp(x, hn::Mul(inner, hn::Set(d, -1.5957691216057308f)));
}

// 0.5 * erfc(|x| / sqrt 2) for |x| >= 0, with relative error ~1.2e-7 + (x^2 / 4 + 2) eps: the Chebyshev fit
// erfc(z) = t * exp(-z^2 + P(t)), t = 1 / (1 + z/2) (Press et al., Numerical Recipes, "erfcc"). One formula for
// all z, no branches; relative (not absolute) accuracy, so the GELU tail x * Phi(x) for x << 0 stays accurate.
// exp's argument P(t) - x^2/2 is formed with one rounding (a fused multiply-add on |x| and |x|/2, both exact
// inputs), which keeps its error at |argument| * eps / 2.
inline FloatVec half_erfc_of_abs_over_sqrt2(FloatVec abs_x) {
  const FloatTag d;
  const FloatVec z = hn::Mul(abs_x, hn::Set(d, 0.7071067811865476f));
  const FloatVec t = hn::Div(hn::Set(d, 1.0f), hn::MulAdd(z, hn::Set(d, 0.5f), hn::Set(d, 1.0f)));
  FloatVec poly = hn::Set(d, 0.17087277f);
  poly = hn::MulAdd(poly, t, hn::Set(d, -0.82215223f));
  poly = hn::MulAdd(poly, t, hn::Set(d, 1.48851587f));
  poly = hn::MulAdd(poly, t, hn::Set(d, -1.13520398f));
  poly = hn::MulAdd(poly, t, hn::Set(d, 0.27886807f));
  poly = hn::MulAdd(poly, t, hn::Set(d, -0.18628806f));
  poly = hn::MulAdd(poly, t, hn::Set(d, 0.09678418f));
  poly = hn::MulAdd(poly, t, hn::Set(d, 0.37409196f));
  poly = hn::MulAdd(poly, t, hn::Set(d, 1.00002368f));
  poly = hn::MulAdd(poly, t, hn::Set(d, -1.26551223f));
  // exp's argument below -104 gives 0 (hn::Exp's contract), the right limit.
  const FloatVec e = hn::Exp(d, hn::NegMulAdd(abs_x, hn::Mul(abs_x, hn::Set(d, 0.5f)), poly));
  return hn::Mul(hn::Mul(t, e), hn::Set(d, 0.5f));
}

// gelu_erf(x) = x * Phi(x), Phi(x) = 0.5 erfc(-x / sqrt 2): for x < 0 that is the tail 0.5 erfc(|x| / sqrt 2),
// for x >= 0 it is 1 - tail (no cancellation: the tail is <= 0.5 there).
inline FloatVec gelu_erf(FloatVec x) {
  const FloatTag d;
  const FloatVec tail = half_erfc_of_abs_over_sqrt2(hn::Abs(x));
  const FloatVec phi = hn::IfThenElse(hn::Lt(x, hn::Zero(d)), tail, hn::Sub(hn::Set(d, 1.0f), tail));
  return hn::Mul(x, phi);
}

}  // namespace jagged::kernels::cpu::vec
