// SIMD building blocks of the fused attention kernel (and the padded baseline's softmax): a fast exp2, and the
// two register-blocked micro-kernels of a FlashAttention step, laid out like a GEMM:
//   scores = Q_rows . K_tile^T   rows x keys; keys run along the lanes, K packed transposed [head_dim][keys],
//                                each query element broadcast (kScoreRows x kKeyVectors accumulators), then the
//                                online softmax on the accumulators, in registers;
//   acc    = alpha * acc + P . V rows x head_dim; head_dim runs along the lanes, each probability broadcast.
// Internal to src/kernels/cpu.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include <hwy/cache_control.h>
#include <hwy/highway.h>

namespace jagged::kernels::cpu::attention_tiles {
namespace hn = hwy::HWY_NAMESPACE;

using FloatTag = hn::ScalableTag<float>;
using FloatVec = hn::Vec<FloatTag>;
inline constexpr size_t kLanes = hn::MaxLanes(FloatTag());

// Vector registers the micro-kernels may fill with accumulators (3/4 of the register file).
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
inline constexpr size_t kAccumulators = 24;  // of 32 zmm
#else
inline constexpr size_t kAccumulators = 12;  // of 16 ymm/xmm
#endif

inline constexpr size_t kKeyVectors = 4;                       // vectors of keys per tile
inline constexpr int64_t kKeyTile = kKeyVectors * kLanes;      // keys per tile (64 with AVX-512)
inline constexpr size_t kScoreRows = kAccumulators / kKeyVectors;  // rows per score micro-kernel call

// Rows per call of the P.V micro-kernel that accumulates `vectors` vectors of head_dim.
constexpr size_t value_rows(size_t vectors) { return std::clamp<size_t>(kAccumulators / vectors, 1, 8); }

// Rows of the narrow variants of both micro-kernels, for query blocks of at most this many (query, head) rows: a
// decode row of a GQA group of 3 (or an MHA row) would otherwise be padded to a full row block. Each row's
// arithmetic is the same in every variant (rows never mix), so the choice changes no bit of the result.
inline constexpr size_t kSmallRows = kScoreRows / 2;

// 2^x for x <= 0: Cephes' exp2f polynomial on [-1/2, 1/2] (relative error < 2e-7) times 2^round(x). Results
// below 2^-125 (x < -125, -inf included) are exactly 0: no denormal is ever produced (they cost microcode
// assists on x86), and masked scores contribute nothing.
HWY_INLINE FloatVec exp2_nonpositive(FloatTag d, FloatVec x) {
  const FloatVec floor = hn::Set(d, -125.0f);
  const auto normal = hn::Gt(x, floor);
  x = hn::Max(x, floor);
  const FloatVec whole = hn::Round(x);
  const FloatVec f = hn::Sub(x, whole);
  FloatVec p = hn::Set(d, 1.535336188319500e-4f);
  p = hn::MulAdd(p, f, hn::Set(d, 1.339887440266574e-3f));
  p = hn::MulAdd(p, f, hn::Set(d, 9.618437357674640e-3f));
  p = hn::MulAdd(p, f, hn::Set(d, 5.550332471162809e-2f));
  p = hn::MulAdd(p, f, hn::Set(d, 2.402264791363012e-1f));
  p = hn::MulAdd(p, f, hn::Set(d, 6.931472028550421e-1f));
  p = hn::MulAdd(p, f, hn::Set(d, 1.0f));
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  return FloatVec{_mm512_maskz_scalef_ps(normal.raw, p.raw, whole.raw)};  // p * 2^whole, or 0
#else
  const hn::RebindToSigned<FloatTag> di;
  const auto exponent = hn::ShiftLeft<23>(hn::Add(hn::ConvertTo(di, whole), hn::Set(di, 127)));
  return hn::IfThenElseZero(normal, hn::Mul(p, hn::BitCast(d, exponent)));
#endif
}

// Online-softmax state of consecutive rows.
struct RowState {
  float* max;    // [rows] running max of the raw scores seen
  float* alpha;  // [rows] factor that rescales the output accumulator after this tile (see accumulate_values)
  float* sum;    // [rows, kLanes] lane-wise running sums of the probabilities
};

// Lane `lane` of v in every lane.
HWY_INLINE FloatVec broadcast_lane(FloatVec v, int32_t lane) {
  const FloatTag d;
  return hn::TableLookupLanes(v, hn::IndicesFromVec(d, hn::Set(hn::RebindToSigned<FloatTag>(), lane)));
}

// A vector of K or V elements as f32: f32 loaded as is, bf16 (a KV cache of bf16 blocks) widened exactly.
template <typename T>
HWY_INLINE FloatVec load_kv(FloatTag d, const T* p) {
  if constexpr (std::is_same_v<T, float>) {
    return hn::Load(d, p);
  } else {
    return hn::PromoteTo(d, hn::LoadU(hn::Rebind<hwy::bfloat16_t, FloatTag>(), p));
  }
}

// Asks the cache lines of `bytes` bytes at p into the caches.
template <typename T>
HWY_INLINE void prefetch_span(const T* p, size_t bytes) {
  const auto* byte = reinterpret_cast<const char*>(p);
  for (size_t offset = 0; offset < bytes; offset += 64) hwy::Prefetch(byte + offset);
}

// One FlashAttention step, up to P, for rows r < kRows (kScoreRows, or kSmallRows) and one key tile:
//   s = q_rows[r] . keys, -inf at or past key_end[r] - key_begin (keys the row may not see);
//   max' = max(max, max_j s); alpha = 2^((max - max') * log2_scale)  (0 from max = -inf; 1 while max' = -inf);
//   p = 2^(s * log2_scale - max' * log2_scale); sum = alpha * sum + p.
// Probabilities go to probs[r][0, kKeyTile) (zeros past kVecs * kLanes); the scores never leave the registers.
// q_rows: kRows pointers to head_dim floats; keys_t [head_dim][keys_stride]: a K tile, transposed (T: f32 or bf16);
// probs [kRows][kKeyTile], aligned; state: the rows' state. next_keys_t (or nullptr): a full K tile of the same
// stride that is read next, asked into the caches a row per step (a burst of prefetches would stall the core).
template <size_t kVecs, size_t kRows = kScoreRows, typename T = float>
HWY_INLINE void score_softmax_rows(const float* const* q_rows, const T* keys_t, size_t keys_stride,
                                   size_t head_dim, const int64_t* key_end, int64_t key_begin, float log2_scale,
                                   RowState state, float* probs, const T* next_keys_t) {
  const FloatTag d;
  const hn::RebindToSigned<FloatTag> di;
  const float* rows[kRows];
  HWY_UNROLL(8)
  for (size_t r = 0; r < kRows; ++r) rows[r] = q_rows[r];
  FloatVec acc[kRows][kVecs];
  HWY_UNROLL(8)
  for (size_t r = 0; r < kRows; ++r) {
    HWY_UNROLL(8)
    for (size_t v = 0; v < kVecs; ++v) acc[r][v] = hn::Zero(d);
  }
  for (size_t c = 0; c < head_dim; ++c) {
    if (next_keys_t != nullptr) prefetch_span(next_keys_t + c * keys_stride, kKeyTile * sizeof(T));
    FloatVec keys[kVecs];
    HWY_UNROLL(8)
    for (size_t v = 0; v < kVecs; ++v) keys[v] = load_kv(d, keys_t + c * keys_stride + v * kLanes);
    HWY_UNROLL(8)
    for (size_t r = 0; r < kRows; ++r) {
      const FloatVec query = hn::Set(d, rows[r][c]);
      HWY_UNROLL(8)
      for (size_t v = 0; v < kVecs; ++v) acc[r][v] = hn::MulAdd(query, keys[v], acc[r][v]);
    }
  }

  // Mask, and the rows' tile maxima gathered in one vector (lane r: row r).
  const FloatVec neg_inf = hn::Set(d, -HUGE_VALF);
  const auto lane = hn::Iota(di, 0);
  FloatVec tile_max = neg_inf;
  HWY_UNROLL(8)
  for (size_t r = 0; r < kRows; ++r) {
    const int64_t count = key_end[r] - key_begin;
    FloatVec row_max = neg_inf;
    HWY_UNROLL(8)
    for (size_t v = 0; v < kVecs; ++v) {
      const int64_t lanes = count - static_cast<int64_t>(v * kLanes);
      if (lanes < static_cast<int64_t>(kLanes)) {
        acc[r][v] = hn::IfThenElse(hn::FirstN(d, static_cast<size_t>(std::max<int64_t>(lanes, 0))), acc[r][v], neg_inf);
      }
      row_max = hn::Max(row_max, acc[r][v]);
    }
    const auto is_row = hn::RebindMask(d, hn::Eq(lane, hn::Set(di, static_cast<int32_t>(r))));
    tile_max = hn::IfThenElse(is_row, hn::MaxOfLanes(d, row_max), tile_max);
  }

  // Running maxima and rescale factors, all rows at once.
  const auto rows_mask = hn::FirstN(d, kRows);
  const FloatVec old_max = hn::MaskedLoad(rows_mask, d, state.max);
  const FloatVec new_max = hn::Max(old_max, tile_max);
  const FloatVec scale = hn::Set(d, log2_scale);
  FloatVec alpha = exp2_nonpositive(d, hn::Mul(hn::Sub(old_max, new_max), scale));
  alpha = hn::IfThenElse(hn::Eq(new_max, neg_inf), hn::Set(d, 1.0f), alpha);
  hn::BlendedStore(new_max, rows_mask, d, state.max);
  hn::BlendedStore(alpha, rows_mask, d, state.alpha);
  const FloatVec neg_bias = hn::Mul(new_max, hn::Neg(scale));

  HWY_UNROLL(8)
  for (size_t r = 0; r < kRows; ++r) {
    const FloatVec bias = broadcast_lane(neg_bias, static_cast<int32_t>(r));
    FloatVec sum = hn::Zero(d);
    HWY_UNROLL(8)
    for (size_t v = 0; v < kVecs; ++v) {
      const FloatVec prob = exp2_nonpositive(d, hn::MulAdd(acc[r][v], scale, bias));
      hn::Store(prob, d, probs + r * kKeyTile + v * kLanes);
      sum = hn::Add(sum, prob);
    }
    HWY_UNROLL(8)
    for (size_t v = kVecs; v < kKeyVectors; ++v) hn::Store(hn::Zero(d), d, probs + r * kKeyTile + v * kLanes);
    float* row_sum = state.sum + r * kLanes;
    hn::Store(hn::MulAdd(hn::Load(d, row_sum), broadcast_lane(alpha, static_cast<int32_t>(r)), sum), d, row_sum);
  }
}

// For r < kRows (value_rows(kVecs), or kSmallRows), the kVecs * kLanes columns at `acc_rows`:
//   acc[r] = alpha[r] * acc[r] + sum_{j < num_keys} probs[r][j] * values[j]   (first: acc[r] starts at 0)
// probs [rows][kKeyTile]; values [num_keys][values_stride] (V rows at one head_dim offset, aligned; T: f32 or bf16);
// acc [rows][acc_stride], aligned. next_values (or nullptr): the same columns of the V tile read next, asked into
// the caches a row per key.
template <size_t kVecs, size_t kRows = value_rows(kVecs), typename T = float>
HWY_INLINE void accumulate_values(bool first, const float* probs, const float* alpha, const T* values,
                                  size_t values_stride, size_t num_keys, float* acc_rows, size_t acc_stride,
                                  const T* next_values) {
  const FloatTag d;
  FloatVec acc[kRows][kVecs];
  HWY_UNROLL(8)
  for (size_t r = 0; r < kRows; ++r) {
    const FloatVec rescale = hn::Set(d, alpha[r]);
    HWY_UNROLL(8)
    for (size_t v = 0; v < kVecs; ++v) {
      acc[r][v] = first ? hn::Zero(d) : hn::Mul(hn::Load(d, acc_rows + r * acc_stride + v * kLanes), rescale);
    }
  }
  for (size_t j = 0; j < num_keys; ++j) {
    if (next_values != nullptr) prefetch_span(next_values + j * values_stride, kVecs * kLanes * sizeof(T));
    FloatVec value[kVecs];
    HWY_UNROLL(8)
    for (size_t v = 0; v < kVecs; ++v) value[v] = load_kv(d, values + j * values_stride + v * kLanes);
    HWY_UNROLL(8)
    for (size_t r = 0; r < kRows; ++r) {
      const FloatVec prob = hn::Set(d, probs[r * kKeyTile + j]);
      HWY_UNROLL(8)
      for (size_t v = 0; v < kVecs; ++v) acc[r][v] = hn::MulAdd(prob, value[v], acc[r][v]);
    }
  }
  HWY_UNROLL(8)
  for (size_t r = 0; r < kRows; ++r) {
    HWY_UNROLL(8)
    for (size_t v = 0; v < kVecs; ++v) hn::Store(acc[r][v], d, acc_rows + r * acc_stride + v * kLanes);
  }
}

}  // namespace jagged::kernels::cpu::attention_tiles
