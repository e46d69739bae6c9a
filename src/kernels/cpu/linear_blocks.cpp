// The GEMM for the GGUF block types other than Q8_0 (Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K). At packing every
// block is split into groups of 32 values with a step and an offset (decode_block_groups: w = step * q - offset;
// Q6_K: a step per half group of 16) and laid out for the tile kernels: per group of a 48-wide panel, the steps
// and offsets of the 48 outputs, the low 4 bits of their quants side by side, then the bits above them.
// - Steps and offsets as the file holds them: its f16 d and m (Q4_0, Q4_1, Q5_0, Q5_1); for the K types the
//   super-block's f16 d and dmin and the int8 sub-block scale and min, multiplied in registers (an exact product,
//   decode_block_groups' value).
// - The low 4 bits are nibbles, 4 inputs per 32-bit lane in vpdpbusd's order (quant_position); each higher bit
//   (bit 4 of the 5-bit types, bits 4 and 5 of Q6_K) is one bit of a 64-bit byte mask per (lane, nibble half,
//   16 outputs) (high_bit_position): the int8 kernel adds 16 (or 32) to the bytes a mask selects, one masked add.
// Memory per value: 0.56 B (Q4_0, the file's), 0.63 (Q4_1), 0.69 (Q5_0, the file's; Q4_K), 0.75 (Q5_1),
// 0.81 (Q5_K), 0.88 (Q6_K), against 4 for f32.
// Two tile kernels read the same bytes. f32: w = step * q (exact in f32) - offset (one rounding, as gguf-py's
// dequantizer) in registers, then the f32 FMA chain: bit for bit the f32 kernel's result on the dequantized weight.
// int8 (AVX512-VNNI): x rounded to Q8_0 blocks and exact int32 block dot products (below). The driver
// (linear_driver.h) keeps both batch-invariant.
#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <utility>
#include <vector>

#include <hwy/highway.h>

#include "core/quant_blocks.h"
#include "jagged/dtype.h"
#include "jagged/error.h"
#include "kernels/cpu/linear_driver.h"
#include "kernels/cpu/linear_int8.h"
#include "kernels/cpu/linear_tasks.h"
#include "kernels/linear.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace jagged::kernels::cpu {

namespace {

namespace hn = hwy::HWY_NAMESPACE;
using FloatTag = hn::ScalableTag<float>;
using FloatVec = hn::Vec<FloatTag>;

constexpr int64_t kGroup = 32;
constexpr int64_t kPanelCols = 48;
constexpr int64_t kLanes = static_cast<int64_t>(HWY_MAX_BYTES / sizeof(float));
constexpr int kVectors = static_cast<int>(kPanelCols / kLanes);
constexpr int kTileRows = kLanes >= 16 ? 8 : 2;
constexpr int64_t kDepthBlock = 128;
constexpr int64_t kTaskRows = 128;
constexpr int64_t kMaxTaskPanels = 4;
constexpr int64_t kMaskOutputs = 16;  // outputs per high-bit mask: 64 bytes, one AVX-512 vector of 4 inputs each
constexpr int64_t kNibbleBytes = kGroup * kPanelCols / 2;
constexpr int64_t kMaskBytes = kGroup * kPanelCols / 8;  // one bit plane
static_assert(kPanelCols % kLanes == 0 && kPanelCols % kMaskOutputs == 0 && kMaskOutputs % kLanes == 0);

// How a type's groups are stored (a structural type: the tile kernels take it as a template argument).
struct GroupFormat {
  int high_bits;       // bits above the nibble: 0, 1 (5-bit types) or 2 (Q6_K)
  int steps;           // 1, or 2 (Q6_K: the low nibbles, inputs 0..15, have a step of their own)
  bool offsets;        // a per-group offset (the types with a min)
  bool scaled_steps;   // the K types: steps (offsets) as f16 d (dmin) times an int8 sub-scale (min), else f16
  int bias;            // added to the stored quant to get decode_block_groups' q (Q4_0: -8, Q5_0: -16, Q6_K: -32)
  constexpr int parts() const { return steps + (offsets ? 1 : 0); }  // steps, then the offset
  // Part p's f16 values (its d or dmin for scaled steps: part 0 and, with offsets, the last) and int8 factors.
  constexpr int64_t half_begin(int part) const {
    return (scaled_steps ? (part < steps ? 0 : 1) : part) * kPanelCols * 2;
  }
  constexpr int64_t factors_begin(int part) const {
    return (offsets ? 2 : 1) * kPanelCols * 2 + part * kPanelCols;
  }
  constexpr int64_t nibbles_begin() const { return scaled_steps ? factors_begin(parts()) : parts() * kPanelCols * 2; }
  constexpr int64_t high_bits_begin() const { return nibbles_begin() + kNibbleBytes; }
  constexpr int64_t chunk_bytes() const { return high_bits_begin() + high_bits * kMaskBytes; }
};

constexpr GroupFormat group_format(QuantType type) {
  switch (type) {
    case QuantType::q4_0: return {0, 1, false, false, -8};
    case QuantType::q5_0: return {1, 1, false, false, -16};
    case QuantType::q4_1: return {0, 1, true, false, 0};
    case QuantType::q5_1: return {1, 1, true, false, 0};
    case QuantType::q4_k: return {0, 1, true, true, 0};
    case QuantType::q5_k: return {1, 1, true, true, 0};
    case QuantType::q6_k: return {2, 2, false, true, -32};
    case QuantType::q8_0: break;  // linear_q8_0.cpp
  }
  return {0, 1, false, false, 0};
}

// Where the nibble of input k of a group of output j sits: 4 lanes of 48 x 32 bits; lane (k % 16) / 4, byte
// k % 4 of output j's 32 bits, low nibble for k < 16: so a lane masked with 0x0f (or shifted by 4) holds 4
// consecutive inputs per output as u8, what vpdpbusd multiplies (the int8 path below).
constexpr int64_t nibble_lane_begin(int64_t lane) { return lane * kPanelCols * 4; }
struct QuantPosition {
  int64_t byte;
  int shift;
};
constexpr QuantPosition quant_position(int64_t k, int64_t j) {
  return {nibble_lane_begin((k % 16) / 4) + j * 4 + k % 4, static_cast<int>((k / 16) * 4)};
}

// The 64-bit mask of bit plane `plane` (bit 4 + plane of the quant) holding input k's bit for output j, and the bit:
// one mask per (nibble lane, low/high nibble, 16 outputs), bit b of it for byte b of that nibble vector (output
// j % 16 = b / 4, input b % 4 of the lane).
struct HighBitPosition {
  int64_t mask;
  int bit;
};
constexpr HighBitPosition high_bit_position(int plane, int64_t k, int64_t j) {
  constexpr int64_t kMasksPerPlane = 4 * 2 * (kPanelCols / kMaskOutputs);
  return {plane * kMasksPerPlane + (((k % 16) / 4) * 2 + k / 16) * (kPanelCols / kMaskOutputs) + j / kMaskOutputs,
          static_cast<int>(4 * (j % kMaskOutputs) + k % 4)};
}

// kVectors vectors of part `part` of a chunk (a step, or the offset): the f16 values, times the int8 factors for
// scaled steps (an exact product, as decode_block_groups').
template <GroupFormat kFormat>
void load_part(const uint8_t* chunk, int part, FloatVec* out) {
  const FloatTag df;
  const hn::Rebind<hwy::float16_t, FloatTag> dh;
  const hn::Rebind<int8_t, FloatTag> di8;
  const hn::Rebind<int32_t, FloatTag> d32;
  for (int v = 0; v < kVectors; ++v) {
    out[v] = hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(chunk + kFormat.half_begin(part)) +
                                                 v * kLanes));
    if constexpr (kFormat.scaled_steps) {
      const auto factors = hn::LoadU(di8, reinterpret_cast<const int8_t*>(chunk + kFormat.factors_begin(part)) + v * kLanes);
      out[v] = hn::Mul(out[v], hn::ConvertTo(df, hn::PromoteTo(d32, factors)));
    }
  }
}

// acc = init or the tile of c; acc += x[r, k] * (step q - offset)[k, :] for k < depth, groups from `weights`
// (the depth block's first); c = acc.
template <int kRows, GroupFormat kFormat>
void block_tile(const void* x_data, int64_t x_stride, const void* weights, int64_t depth, const float* init,
                float* c, int64_t c_stride, TilePrefetch prefetch) {
  const FloatTag df;
  const hn::Rebind<int32_t, FloatTag> d32;
  const hn::RebindToUnsigned<decltype(d32)> du32;
  const auto* x = static_cast<const float*>(x_data);
  const auto* chunks = static_cast<const uint8_t*>(weights);
  // High bits: lane i of vector v is output j = v * kLanes + i, bit 4 (j % 8) + k % 4 of its mask's 32-bit word
  // (j % 16) / 8.
  hn::Vec<decltype(du32)> bit_shift[kVectors];
  hn::Mask<decltype(du32)> high_word[kVectors];
  for (int v = 0; v < kVectors; ++v) {
    const auto j = hn::And(hn::Add(hn::Iota(du32, 0), hn::Set(du32, static_cast<uint32_t>(v * kLanes))),
                           hn::Set(du32, kMaskOutputs - 1));
    bit_shift[v] = hn::ShiftLeft<2>(hn::And(j, hn::Set(du32, 7u)));
    high_word[v] = hn::Gt(j, hn::Set(du32, 7u));
  }
  FloatVec acc[kRows][kVectors];
  for (int r = 0; r < kRows; ++r) {
    for (int v = 0; v < kVectors; ++v) acc[r][v] = hn::LoadU(df, (init != nullptr ? init : c + r * c_stride) + v * kLanes);
  }
  const TilePrefetch spread = prefetch.over(ceil_div(depth, kGroup));
  for (int64_t group_begin = 0; group_begin < depth; group_begin += kGroup) {
    spread.step(group_begin / kGroup);
    const uint8_t* chunk = chunks + group_begin / kGroup * kFormat.chunk_bytes();
    FloatVec step[kFormat.steps][kVectors];
    FloatVec offset[kVectors];
    for (int s = 0; s < kFormat.steps; ++s) load_part<kFormat>(chunk, s, step[s]);
    if constexpr (kFormat.offsets) load_part<kFormat>(chunk, kFormat.steps, offset);
    const uint8_t* nibbles = chunk + kFormat.nibbles_begin();
    const int64_t count = std::min(kGroup, depth - group_begin);
    for (int64_t k = 0; k < count; ++k) {
      FloatVec w[kVectors];
      for (int v = 0; v < kVectors; ++v) {
        const auto lanes =
            hn::LoadU(du32, reinterpret_cast<const uint32_t*>(nibbles + nibble_lane_begin((k % 16) / 4)) + v * kLanes);
        auto q = hn::And(hn::ShiftRightSame(lanes, static_cast<int>(8 * (k % 4) + 4 * (k / 16))), hn::Set(du32, 0x0fu));
        for (int plane = 0; plane < kFormat.high_bits; ++plane) {
          uint32_t words[2];
          std::memcpy(words, chunk + kFormat.high_bits_begin() + high_bit_position(plane, k, v * kLanes).mask * 8, 8);
          const auto word = hn::IfThenElse(high_word[v], hn::Set(du32, words[1]), hn::Set(du32, words[0]));
          const auto bit = hn::And(hn::Shr(word, hn::Add(bit_shift[v], hn::Set(du32, static_cast<uint32_t>(k % 4)))),
                                   hn::Set(du32, 1u));
          q = hn::Or(q, hn::ShiftLeftSame(bit, 4 + plane));
        }
        const auto centred = hn::Add(hn::BitCast(d32, q), hn::Set(d32, kFormat.bias));
        w[v] = hn::Mul(step[kFormat.steps == 2 ? k / 16 : 0][v], hn::ConvertTo(df, centred));  // exact
        if constexpr (kFormat.offsets) w[v] = hn::Sub(w[v], offset[v]);
      }
      for (int r = 0; r < kRows; ++r) {
        const FloatVec broadcast = hn::Set(df, x[r * x_stride + group_begin + k]);
        for (int v = 0; v < kVectors; ++v) acc[r][v] = hn::MulAdd(broadcast, w[v], acc[r][v]);
      }
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int v = 0; v < kVectors; ++v) hn::StoreU(acc[r][v], df, c + r * c_stride + v * kLanes);
  }
}

template <GroupFormat kFormat, int... kRows>
constexpr auto make_tiles(std::integer_sequence<int, kRows...>) {
  return std::array<LinearTileKernel, sizeof...(kRows)>{&block_tile<kRows + 1, kFormat>...};
}

template <QuantType kType>
const LinearTileKernel* tiles_of() {
  static constexpr auto kTiles = make_tiles<group_format(kType)>(std::make_integer_sequence<int, kTileRows>{});
  return kTiles.data();
}

const LinearTileKernel* tiles_for(QuantType type) {
  switch (type) {
    case QuantType::q4_0: return tiles_of<QuantType::q4_0>();
    case QuantType::q5_0: return tiles_of<QuantType::q5_0>();
    case QuantType::q4_1: return tiles_of<QuantType::q4_1>();
    case QuantType::q5_1: return tiles_of<QuantType::q5_1>();
    case QuantType::q4_k: return tiles_of<QuantType::q4_k>();
    case QuantType::q5_k: return tiles_of<QuantType::q5_k>();
    case QuantType::q6_k: return tiles_of<QuantType::q6_k>();
    case QuantType::q8_0: break;
  }
  return nullptr;
}

#if defined(__x86_64__)
// ---- int8 activations (AVX512-VNNI): Q4_0 and Q5_0 as llama.cpp's vec_dot_q4_0_q8_0 and vec_dot_q5_0_q8_0 per
// block; the types with an offset (Q4_1, Q5_1, Q4_K, Q5_K) and Q6_K likewise ----
// x rounded to Q8_0 blocks (linear_int8.h); per block (Q6_K: per half block, each with its step), dot = sum over
// the 4 lanes of vpdpbusd(u, qx), u the stored quant as u8 (the nibble, plus 16 and 32 where the high-bit masks
// say), exact in int32. The stored quant is q - bias, so dot starts at bias * sum(qx) (Q4_0: -8 sum(qx), Q5_0:
// -16 sum(qx), exact fractions of the stored -128 sum(qx); Q6_K: -32 times the half's sum), taken back per row:
// no byte of the weight added; acc = fma(float(dot), dx * step, acc). With an offset (w = step q - offset): then
// acc = fma(-(dx * sum(qx)), offset, acc): the exact value of sum_k w_k dx qx_k up to those two roundings.
// (llama.cpp rounds x to Q8_1 for Q4_1 and Q5_1, to Q8_K blocks of 256 for the K types; the activation error
// bound is the same half step per value.)
constexpr int kVnniTileRows = 4;  // 4 x 3 int32 + 4 x 3 f32 accumulators + 6 nibble vectors + 2 broadcasts
constexpr int64_t kVnniDepthBlock = 512;

// Outputs 16 v .. 16 v + 15 of part `part` (a step, or the offset): as load_part.
template <GroupFormat kFormat>
__attribute__((target("avx512f"))) __m512 load_part_512(const uint8_t* chunk, int part, int v) {
  const __m512 halves =
      _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(chunk + kFormat.half_begin(part) + v * 32)));
  if constexpr (!kFormat.scaled_steps) return halves;
  const __m128i factors = _mm_loadu_si128(reinterpret_cast<const __m128i*>(chunk + kFormat.factors_begin(part) + v * 16));
  return _mm512_mul_ps(halves, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(factors)));
}

// The u8 quants of nibble lane `lane`, low (half 0) or high nibbles, outputs 16 v .. 16 v + 15: the nibbles plus
// their high bits.
template <GroupFormat kFormat>
__attribute__((target("avx512f,avx512bw"))) __m512i stored_quants(const uint8_t* chunk, int64_t lane, int half, int v) {
  const __m512i bytes = _mm512_loadu_si512(chunk + kFormat.nibbles_begin() + nibble_lane_begin(lane) + v * 64);
  __m512i quants = _mm512_and_si512(half == 0 ? bytes : _mm512_srli_epi16(bytes, 4), _mm512_set1_epi8(0x0f));
  for (int plane = 0; plane < kFormat.high_bits; ++plane) {
    uint64_t mask = 0;
    std::memcpy(&mask, chunk + kFormat.high_bits_begin() + high_bit_position(plane, half * 16 + lane * 4, v * 16).mask * 8,
                8);
    quants = _mm512_mask_add_epi8(quants, _cvtu64_mask64(mask), quants, _mm512_set1_epi8(static_cast<char>(16 << plane)));
  }
  return quants;
}

// bias * (the sum of qx over the pass's inputs): all 32, or (two steps) the half `pass`. Units: linear_int8.h.
template <GroupFormat kFormat>
int32_t bias_correction(const uint32_t* x_units, int pass) {
  const auto minus_128_sum = static_cast<int32_t>(x_units[9]);
  if constexpr (kFormat.steps == 1) return kFormat.bias == 0 ? 0 : minus_128_sum / (128 / -kFormat.bias);
  const auto low_sum = static_cast<int32_t>(x_units[10]);
  return kFormat.bias * (pass == 0 ? low_sum : -(minus_128_sum / 128) - low_sum);
}

template <int kRows, GroupFormat kFormat>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void nibble_vnni_tile(const void* x_data, int64_t x_stride,
                                                                               const void* weights, int64_t depth,
                                                                               const float* init, float* c,
                                                                               int64_t c_stride, TilePrefetch prefetch) {
  static_assert(kFormat.bias == 0 || 128 % -kFormat.bias == 0);
  static_assert(kFormat.steps == 1 || !kFormat.offsets);
  const auto* x = static_cast<const uint32_t*>(x_data);
  const auto* chunks = static_cast<const uint8_t*>(weights);
  __m512 acc[kRows][3];
  for (int r = 0; r < kRows; ++r) {
    for (int v = 0; v < 3; ++v) acc[r][v] = _mm512_loadu_ps(init != nullptr ? init + v * 16 : c + r * c_stride + v * 16);
  }
  const TilePrefetch spread = prefetch.over(ceil_div(depth, kGroup));
  for (int64_t b = 0; b < ceil_div(depth, kGroup); ++b) {
    spread.step(b);
    const uint8_t* chunk = chunks + b * kFormat.chunk_bytes();
    const uint32_t* x_units = x + b * kInt8XBlockUnits;
    // One pass over both nibble halves; two steps: a pass per half, each with its own step.
    for (int pass = 0; pass < kFormat.steps; ++pass) {
      __m512i dot[kRows][3];
      for (int r = 0; r < kRows; ++r) {
        const __m512i correction = _mm512_set1_epi32(bias_correction<kFormat>(x_units + r * x_stride, pass));
        for (int v = 0; v < 3; ++v) dot[r][v] = correction;
      }
      for (int64_t lane = 0; lane < 4; ++lane) {
        __m512i low[3];
        __m512i high[3];
        for (int v = 0; v < 3; ++v) {
          if constexpr (kFormat.steps == 1) {
            low[v] = stored_quants<kFormat>(chunk, lane, 0, v);
            high[v] = stored_quants<kFormat>(chunk, lane, 1, v);
          } else {
            low[v] = stored_quants<kFormat>(chunk, lane, pass, v);
          }
        }
        for (int r = 0; r < kRows; ++r) {
          const uint32_t* row_units = x_units + r * x_stride;
          if constexpr (kFormat.steps == 1) {
            const __m512i x_low = _mm512_set1_epi32(static_cast<int>(row_units[lane]));
            const __m512i x_high = _mm512_set1_epi32(static_cast<int>(row_units[4 + lane]));
            for (int v = 0; v < 3; ++v) {
              dot[r][v] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(dot[r][v], low[v], x_low), high[v], x_high);
            }
          } else {
            const __m512i x_half = _mm512_set1_epi32(static_cast<int>(row_units[pass * 4 + lane]));
            for (int v = 0; v < 3; ++v) dot[r][v] = _mm512_dpbusd_epi32(dot[r][v], low[v], x_half);
          }
        }
      }
      for (int r = 0; r < kRows; ++r) {
        const float dx = std::bit_cast<float>(x_units[r * x_stride + 8]);
        const __m512 x_scale = _mm512_set1_ps(dx);
        // dx sum(qx), sum(qx) from the stored -128 sum(qx) (exact for a finite block).
        const __m512 x_sum =
            _mm512_set1_ps(dx * static_cast<float>(-(static_cast<int32_t>(x_units[r * x_stride + 9]) / 128)));
        for (int v = 0; v < 3; ++v) {
          // The masked conversion, all lanes on: the unmasked one trips GCC 12's -Wuninitialized inside
          // avx512fintrin.h when the file is built without -march=native.
          const __m512 step = load_part_512<kFormat>(chunk, pass, v);
          acc[r][v] =
              _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xffff, dot[r][v]), _mm512_mul_ps(x_scale, step), acc[r][v]);
          if constexpr (kFormat.offsets) {
            acc[r][v] = _mm512_fnmadd_ps(x_sum, load_part_512<kFormat>(chunk, kFormat.steps, v), acc[r][v]);
          }
        }
      }
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int v = 0; v < 3; ++v) _mm512_storeu_ps(c + r * c_stride + v * 16, acc[r][v]);
  }
}

template <GroupFormat kFormat, int... kRows>
constexpr auto make_nibble_vnni_tiles(std::integer_sequence<int, kRows...>) {
  return std::array<LinearTileKernel, sizeof...(kRows)>{&nibble_vnni_tile<kRows + 1, kFormat>...};
}
template <QuantType kType>
constexpr auto kNibbleVnniTiles =
    make_nibble_vnni_tiles<group_format(kType)>(std::make_integer_sequence<int, kVnniTileRows>{});
template <QuantType kType>
using NibbleVnniWeights = Int8BlockWeights<kPanelCols, group_format(kType).chunk_bytes(), kVnniDepthBlock,
                                           kTaskRows, kMaxTaskPanels, kVnniTileRows, kNibbleVnniTiles<kType>>;

template <QuantType kType>
void run_nibble_vnni(ConstMatrixView x, const uint8_t* packed, int64_t out_features, const float* bias,
                     MatrixView out) {
  using Weights = NibbleVnniWeights<kType>;
  LinearDriver<Weights>::run(Weights{packed, ceil_div(x.cols, kGroup), quantize_activations_q8_0(x)}, x,
                             out_features, bias, out);
}

void run_int8(QuantType type, ConstMatrixView x, const uint8_t* packed, int64_t out_features, const float* bias,
              MatrixView out) {
  switch (type) {
    case QuantType::q4_0: return run_nibble_vnni<QuantType::q4_0>(x, packed, out_features, bias, out);
    case QuantType::q5_0: return run_nibble_vnni<QuantType::q5_0>(x, packed, out_features, bias, out);
    case QuantType::q4_1: return run_nibble_vnni<QuantType::q4_1>(x, packed, out_features, bias, out);
    case QuantType::q5_1: return run_nibble_vnni<QuantType::q5_1>(x, packed, out_features, bias, out);
    case QuantType::q4_k: return run_nibble_vnni<QuantType::q4_k>(x, packed, out_features, bias, out);
    case QuantType::q5_k: return run_nibble_vnni<QuantType::q5_k>(x, packed, out_features, bias, out);
    case QuantType::q6_k: return run_nibble_vnni<QuantType::q6_k>(x, packed, out_features, bias, out);
    case QuantType::q8_0: break;
  }
  throw InvalidArgument("linear_packed_blocks: Q8_0 has its own kernel (linear_packed_q8_0)");
}
#endif

struct GroupWeights : LinearInPlaceFormat<kPanelCols, kTileRows, kDepthBlock, kTaskRows, kMaxTaskPanels> {
  const uint8_t* packed;
  int64_t chunk_bytes;
  int64_t in_groups;
  const LinearTileKernel* tiles;
  LinearTileKernel tile(int rows) const { return tiles[rows - 1]; }
  const void* block(int64_t panel, int64_t depth_begin) const {
    return packed + (panel * in_groups + depth_begin / kGroup) * chunk_bytes;
  }
  const void* next_block(int64_t panel, int64_t depth_begin) const { return block(panel, depth_begin); }
  int64_t block_bytes(int64_t depth) const { return ceil_div(depth, kGroup) * chunk_bytes; }
};

int64_t groups_per_row(QuantType type, int64_t in_features) {
  return quant_row_bytes(type, in_features) / quant_layout(type).bytes * quant_layout(type).values / kGroup;
}

// Part `part` of output j (a step, or the offset): its f16 value and, for scaled steps, its int8 factor.
void store_part(const GroupFormat& format, uint8_t* chunk, int part, int64_t j, uint16_t half_bits, int8_t factor) {
  std::memcpy(chunk + format.half_begin(part) + j * 2, &half_bits, 2);
  if (format.scaled_steps) chunk[format.factors_begin(part) + j] = static_cast<uint8_t>(factor);
}
float part_value(const GroupFormat& format, const uint8_t* chunk, int part, int64_t j) {
  uint16_t half_bits = 0;
  std::memcpy(&half_bits, chunk + format.half_begin(part) + j * 2, 2);
  const float value = f16_to_f32(half_bits);
  if (!format.scaled_steps) return value;
  return value * static_cast<float>(static_cast<int8_t>(chunk[format.factors_begin(part) + j]));  // exact
}

// Group g of a block into its chunk, output j: steps and offset, nibbles, high bits. scales: the block's factors
// (scaled steps only).
void pack_group(const GroupFormat& format, const KBlockScales& scales, int64_t g, const float* steps,
                const float* offsets, const int8_t* quants, int64_t j, uint8_t* chunk) {
  if (format.scaled_steps) {
    for (int s = 0; s < format.steps; ++s) store_part(format, chunk, s, j, scales.d, scales.sub_scales[g * format.steps + s]);
    if (format.offsets) store_part(format, chunk, format.steps, j, scales.dmin, scales.sub_mins[g]);
  } else {  // one step (the file's d) and offset (-m) per group, exact in f16
    store_part(format, chunk, 0, j, f32_to_f16(steps[g]), 0);
    if (format.offsets) store_part(format, chunk, format.steps, j, f32_to_f16(offsets[g]), 0);
  }
  for (int64_t k = 0; k < kGroup; ++k) {
    const int stored = quants[g * kGroup + k] - format.bias;
    const QuantPosition at = quant_position(k, j);
    chunk[format.nibbles_begin() + at.byte] |= static_cast<uint8_t>((stored & 0x0f) << at.shift);
    for (int plane = 0; plane < format.high_bits; ++plane) {
      if ((stored >> (4 + plane) & 1) == 0) continue;
      const HighBitPosition bit = high_bit_position(plane, k, j);
      chunk[format.high_bits_begin() + bit.mask * 8 + bit.bit / 8] |= static_cast<uint8_t>(1u << (bit.bit % 8));
    }
  }
}

}  // namespace

int64_t packed_linear_blocks_bytes(QuantType type, int64_t out_features, int64_t in_features) {
  return ceil_div(out_features, kPanelCols) * groups_per_row(type, in_features) * group_format(type).chunk_bytes();
}

void pack_linear_weight_blocks(QuantType type, const uint8_t* rows, int64_t out_features, int64_t in_features,
                               uint8_t* packed) {
  const QuantLayout& layout = quant_layout(type);
  const GroupFormat format = group_format(type);
  const int64_t in_blocks = ceil_div(in_features, layout.values);
  const int64_t in_groups = groups_per_row(type, in_features);
  const int64_t groups_per_block = layout.values / kGroup;
  std::memset(packed, 0, static_cast<size_t>(packed_linear_blocks_bytes(type, out_features, in_features)));
  float steps[16];
  float offsets[16];
  int8_t quants[256];
  for (int64_t o = 0; o < out_features; ++o) {
    const int64_t panel = o / kPanelCols;
    for (int64_t b = 0; b < in_blocks; ++b) {
      const uint8_t* block = rows + (o * in_blocks + b) * layout.bytes;
      decode_block_groups(type, block, steps, offsets, quants);
      const KBlockScales scales = format.scaled_steps ? k_block_scales(type, block) : KBlockScales{};
      for (int64_t g = 0; g < groups_per_block; ++g) {
        uint8_t* chunk = packed + (panel * in_groups + b * groups_per_block + g) * format.chunk_bytes();
        pack_group(format, scales, g, steps, offsets, quants, o % kPanelCols, chunk);
      }
    }
  }
}

void unpack_linear_row_blocks(QuantType type, const uint8_t* packed, int64_t in_features, int64_t row,
                              float* values) {
  const GroupFormat format = group_format(type);
  const int64_t in_groups = groups_per_row(type, in_features);
  const int64_t j = row % kPanelCols;
  for (int64_t i = 0; i < in_features; ++i) {
    const uint8_t* chunk = packed + ((row / kPanelCols) * in_groups + i / kGroup) * format.chunk_bytes();
    const int64_t k = i % kGroup;
    const float step = part_value(format, chunk, format.steps == 2 ? static_cast<int>(k / 16) : 0, j);
    const float offset = format.offsets ? part_value(format, chunk, format.steps, j) : 0.0f;
    const QuantPosition at = quant_position(k, j);
    int stored = (chunk[format.nibbles_begin() + at.byte] >> at.shift) & 0x0f;
    for (int plane = 0; plane < format.high_bits; ++plane) {
      const HighBitPosition bit = high_bit_position(plane, k, j);
      stored |= ((chunk[format.high_bits_begin() + bit.mask * 8 + bit.bit / 8] >> (bit.bit % 8)) & 1) << (4 + plane);
    }
    const float scaled = step * static_cast<float>(stored + format.bias);
    values[i] = scaled - offset;
  }
}

void linear_packed_blocks(QuantType type, ConstMatrixView x, const uint8_t* packed, int64_t out_features,
                          const float* bias, MatrixView out, LinearQ8Path path) {
#if defined(__x86_64__)
  if (path == LinearQ8Path::avx512_vnni && cpu_has_avx512_vnni()) return run_int8(type, x, packed, out_features, bias, out);
#endif
  (void)path;  // f32 activations: asked for, or a CPU without VNNI
  const GroupWeights weights{{}, packed, group_format(type).chunk_bytes(), groups_per_row(type, x.cols), tiles_for(type)};
  LinearDriver<GroupWeights>::run(weights, x, out_features, bias, out);
}

}  // namespace jagged::kernels::cpu
