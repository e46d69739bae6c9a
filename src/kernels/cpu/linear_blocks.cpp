// The GEMM for the GGUF block types other than Q8_0 (Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K). At packing every
// block is split into groups of 32 values (16 for Q6_K) with a step and an offset each (decode_block_groups:
// w = step * q - offset) and laid out for the tile kernels: per group of a 48-wide panel, the 48 steps, the 48
// offsets (types with a min only), the quants of the 48 outputs side by side, then (5-bit types) their fifth bits.
// - Steps and offsets are the file's f16 where the block holds them so (Q4_0, Q4_1, Q5_0, Q5_1: d and m), f32
//   where they are products (the K types: d * scale, dmin * min, exact in f32 but not in f16).
// - The low 4 bits of the 4- and 5-bit types are nibbles, 4 inputs per 32-bit lane in vpdpbusd's order
//   (quant_position); a fifth bit is one bit of a 64-bit byte mask per (lane, half, 16 outputs) (fifth_bit_position):
//   the int8 kernel adds 16 to the bytes it selects, one masked add. Q6_K's quants are one int8 per input.
// Memory per value: 0.56 B (Q4_0, as the file), 0.63 (Q4_1), 0.69 (Q5_0, as the file), 0.75 (Q5_1, Q4_K),
// 0.94 (Q5_K), 1.25 (Q6_K), against 4 for f32.
// Two tile kernels read the same bytes. f32: w = step * q (exact in f32) - offset (one rounding, as gguf-py's
// dequantizer) in registers, then the f32 FMA chain: bit for bit the f32 kernel's result on the dequantized weight.
// int8 (AVX512-VNNI, the nibble types): x rounded to Q8_0 blocks and exact int32 block dot products (below). The
// driver (linear_driver.h) keeps both batch-invariant.
#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <utility>
#include <vector>

#include <hwy/highway.h>

#include "core/quant_blocks.h"
#include "jagged/dtype.h"
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

constexpr int64_t kPanelCols = 48;
constexpr int64_t kLanes = static_cast<int64_t>(HWY_MAX_BYTES / sizeof(float));
constexpr int kVectors = static_cast<int>(kPanelCols / kLanes);
constexpr int kTileRows = kLanes >= 16 ? 8 : 2;
constexpr int64_t kDepthBlock = 128;
constexpr int64_t kTaskRows = 128;
constexpr int64_t kMaxTaskPanels = 4;
constexpr int64_t kMaskOutputs = 16;  // outputs per fifth-bit mask: 64 bytes, one AVX-512 vector of 4 inputs each
static_assert(kPanelCols % kLanes == 0 && kPanelCols % kMaskOutputs == 0 && kMaskOutputs % kLanes == 0);

// How a type's groups are stored (a structural type: the tile kernels take it as a template argument).
struct GroupFormat {
  int64_t group;    // values per group: 32, or 16 (Q6_K)
  bool nibbles;     // the low 4 bits, two inputs per byte, in vpdpbusd's order (quant_position)
  bool fifth_bit;   // 5-bit types: bit 4 in byte masks (fifth_bit_position)
  bool offsets;     // a per-group offset (the types with a min)
  bool half_steps;  // steps and offsets as f16 (the file's d and m), else f32
  int bias;         // added to the stored quant to get decode_block_groups' q (Q4_0: -8, Q5_0: -16)
  constexpr int64_t step_bytes() const { return (half_steps ? 2 : 4) * kPanelCols; }
  constexpr int64_t quants_begin() const { return (offsets ? 2 : 1) * step_bytes(); }
  constexpr int64_t fifth_bits_begin() const { return quants_begin() + group * kPanelCols / (nibbles ? 2 : 1); }
  constexpr int64_t chunk_bytes() const { return fifth_bits_begin() + (fifth_bit ? group * kPanelCols / 8 : 0); }
};

constexpr GroupFormat group_format(QuantType type) {
  switch (type) {
    case QuantType::q4_0: return {32, true, false, false, true, -8};
    case QuantType::q5_0: return {32, true, true, false, true, -16};
    case QuantType::q4_1: return {32, true, false, true, true, 0};
    case QuantType::q5_1: return {32, true, true, true, true, 0};
    case QuantType::q4_k: return {32, true, false, true, false, 0};
    case QuantType::q5_k: return {32, true, true, true, false, 0};
    case QuantType::q6_k: return {16, false, false, false, false, 0};
    case QuantType::q8_0: break;  // linear_q8_0.cpp
  }
  return {32, false, false, false, false, 0};
}

// Where input k of a group of output j sits: byte and nibble shift from the group's quants. Nibbles: 4 lanes of
// 48 x 32 bits; lane (k % 16) / 4, byte k % 4 of output j's 32 bits, low nibble for k < 16: so a lane masked with
// 0x0f (or shifted by 4) holds 4 consecutive inputs per output as u8, what vpdpbusd multiplies (the int8 path
// below). int8: row k of 48 bytes.
struct QuantPosition {
  int64_t byte;
  int shift;
};
QuantPosition quant_position(const GroupFormat& format, int64_t k, int64_t j) {
  if (format.nibbles) return {((k % 16) / 4) * kPanelCols * 4 + j * 4 + k % 4, static_cast<int>((k / 16) * 4)};
  return {k * kPanelCols + j, 0};
}

// The 64-bit mask holding input k's fifth bit for output j, and the bit: one mask per (nibble lane, low/high
// nibble, 16 outputs), bit b of it for byte b of that nibble vector (output j % 16 = b / 4, input b % 4 of the lane).
struct FifthBitPosition {
  int64_t mask;
  int bit;
};
constexpr FifthBitPosition fifth_bit_position(int64_t k, int64_t j) {
  return {(((k % 16) / 4) * 2 + k / 16) * (kPanelCols / kMaskOutputs) + j / kMaskOutputs,
          static_cast<int>(4 * (j % kMaskOutputs) + k % 4)};
}

// kVectors vectors of the 48 steps (offsets: second half) of a chunk, f16 or f32 as the format stores them.
template <GroupFormat kFormat>
void load_steps(const uint8_t* chunk, int64_t first, FloatVec* out) {
  const FloatTag df;
  for (int v = 0; v < kVectors; ++v) {
    if constexpr (kFormat.half_steps) {
      const hn::Rebind<hwy::float16_t, FloatTag> dh;
      out[v] = hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(chunk) + first + v * kLanes));
    } else {
      out[v] = hn::LoadU(df, reinterpret_cast<const float*>(chunk) + first + v * kLanes);
    }
  }
}

// acc = init or the tile of c; acc += x[r, k] * (step q - offset)[k, :] for k < depth, groups from `weights`
// (the depth block's first); c = acc.
template <int kRows, GroupFormat kFormat>
void block_tile(const void* x_data, int64_t x_stride, const void* weights, int64_t depth, const float* init,
                float* c, int64_t c_stride) {
  constexpr int64_t kGroup = kFormat.group;
  const FloatTag df;
  const hn::Rebind<int32_t, FloatTag> d32;
  const hn::Rebind<int8_t, FloatTag> di8;
  const auto* x = static_cast<const float*>(x_data);
  const auto* chunks = static_cast<const uint8_t*>(weights);
  // Fifth bits: lane i of vector v is output j = v * kLanes + i, bit 4 (j % 8) + k % 4 of the mask's 32-bit word
  // (j % 16) / 8.
  hn::Vec<decltype(d32)> bit_shift[kVectors];
  hn::Mask<decltype(d32)> high_word[kVectors];
  for (int v = 0; v < kVectors; ++v) {
    const auto j = hn::And(hn::Add(hn::Iota(d32, 0), hn::Set(d32, static_cast<int32_t>(v * kLanes))),
                           hn::Set(d32, kMaskOutputs - 1));
    bit_shift[v] = hn::ShiftLeft<2>(hn::And(j, hn::Set(d32, 7)));
    high_word[v] = hn::Gt(j, hn::Set(d32, 7));
  }
  FloatVec acc[kRows][kVectors];
  for (int r = 0; r < kRows; ++r) {
    for (int v = 0; v < kVectors; ++v) acc[r][v] = hn::LoadU(df, (init != nullptr ? init : c + r * c_stride) + v * kLanes);
  }
  for (int64_t group_begin = 0; group_begin < depth; group_begin += kGroup) {
    const uint8_t* chunk = chunks + group_begin / kGroup * kFormat.chunk_bytes();
    FloatVec step[kVectors];
    FloatVec offset[kVectors];
    load_steps<kFormat>(chunk, 0, step);
    if constexpr (kFormat.offsets) load_steps<kFormat>(chunk, kPanelCols, offset);
    const uint8_t* quants = chunk + kFormat.quants_begin();
    const int64_t count = std::min(kGroup, depth - group_begin);
    for (int64_t k = 0; k < count; ++k) {
      FloatVec w[kVectors];
      for (int v = 0; v < kVectors; ++v) {
        hn::Vec<decltype(d32)> q;
        if constexpr (kFormat.nibbles) {
          const auto lanes = hn::LoadU(d32, reinterpret_cast<const int32_t*>(quants + ((k % 16) / 4) * kPanelCols * 4) +
                                                v * kLanes);
          q = hn::And(hn::ShiftRightSame(lanes, static_cast<int>(8 * (k % 4) + 4 * (k / 16))), hn::Set(d32, 0x0f));
        } else {
          q = hn::PromoteTo(d32, hn::LoadU(di8, reinterpret_cast<const int8_t*>(quants) + k * kPanelCols + v * kLanes));
        }
        if constexpr (kFormat.fifth_bit) {
          const FifthBitPosition at = fifth_bit_position(k, v * kLanes);
          uint32_t words[2];
          std::memcpy(words, chunk + kFormat.fifth_bits_begin() + at.mask * 8, 8);
          const auto word = hn::IfThenElse(high_word[v], hn::Set(d32, static_cast<int32_t>(words[1])),
                                           hn::Set(d32, static_cast<int32_t>(words[0])));
          const auto bit = hn::And(hn::Shr(hn::BitCast(hn::RebindToUnsigned<decltype(d32)>(), word),
                                           hn::BitCast(hn::RebindToUnsigned<decltype(d32)>(),
                                                       hn::Add(bit_shift[v], hn::Set(d32, static_cast<int32_t>(k % 4))))),
                                   hn::Set(hn::RebindToUnsigned<decltype(d32)>(), 1u));
          q = hn::Add(q, hn::ShiftLeft<4>(hn::BitCast(d32, bit)));
        }
        if constexpr (kFormat.bias != 0) q = hn::Add(q, hn::Set(d32, kFormat.bias));
        w[v] = hn::Mul(step[v], hn::ConvertTo(df, q));  // exact
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
// ---- The nibble types with int8 activations (AVX512-VNNI): Q4_0 and Q5_0 as llama.cpp's vec_dot_q4_0_q8_0 and
// vec_dot_q5_0_q8_0 per block; Q4_1, Q5_1, Q4_K, Q5_K (a step and an offset per group of 32) likewise ----
// x rounded to Q8_0 blocks (linear_int8.h); per block, dot = sum over the 4 lanes of vpdpbusd(u, qx) for the low
// and the high nibbles, u the stored quant as u8 (5-bit types: the nibble plus 16 where the fifth bit's mask
// says), exact in int32. The stored quant is q - bias, so dot starts at bias sum(qx) (Q4_0: -8 sum(qx), Q5_0:
// -16 sum(qx), exact fractions of the stored -128 sum(qx), taken back per row: no byte of the weight added);
// acc = fma(float(dot), dx * step, acc). With an offset (w = step q - offset): then
// acc = fma(-(dx * sum(qx)), offset, acc): the exact value of sum_k w_k dx qx_k up to those two roundings.
// (llama.cpp rounds x to Q8_1 for Q4_1 and Q5_1, to Q8_K blocks of 256 for the K types; the activation error
// bound is the same half step per value.)
constexpr int kVnniTileRows = 4;  // 4 x 3 int32 + 4 x 3 f32 accumulators + 6 nibble vectors + 2 broadcasts
constexpr int64_t kVnniDepthBlock = 512;

// 16 steps (offsets: from `first`) of vector v, f16 or f32 as the format stores them.
template <GroupFormat kFormat>
__attribute__((target("avx512f"))) __m512 load_steps_512(const uint8_t* chunk, int64_t first) {
  if constexpr (kFormat.half_steps) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(chunk + first * 2)));
  } else {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(chunk) + first);
  }
}

template <int kRows, GroupFormat kFormat>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void nibble_vnni_tile(const void* x_data, int64_t x_stride,
                                                                               const void* weights, int64_t depth,
                                                                               const float* init, float* c,
                                                                               int64_t c_stride) {
  static_assert(kFormat.nibbles && kFormat.group == 32 && (kFormat.bias == 0 || 128 % -kFormat.bias == 0));
  const auto* x = static_cast<const uint32_t*>(x_data);
  const auto* chunks = static_cast<const uint8_t*>(weights);
  const __m512i low_nibbles = _mm512_set1_epi8(0x0f);
  const __m512i sixteen = _mm512_set1_epi8(16);
  __m512 acc[kRows][3];
  for (int r = 0; r < kRows; ++r) {
    for (int v = 0; v < 3; ++v) acc[r][v] = _mm512_loadu_ps(init != nullptr ? init + v * 16 : c + r * c_stride + v * 16);
  }
  for (int64_t b = 0; b < ceil_div(depth, 32); ++b) {
    const uint8_t* chunk = chunks + b * kFormat.chunk_bytes();
    const uint32_t* x_units = x + b * kInt8XBlockUnits;
    __m512i dot[kRows][3];
    for (int r = 0; r < kRows; ++r) {
      const auto minus_128_sum = static_cast<int32_t>(x_units[r * x_stride + 9]);
      const __m512i correction = _mm512_set1_epi32(kFormat.bias == 0 ? 0 : minus_128_sum / (128 / -kFormat.bias));
      for (int v = 0; v < 3; ++v) dot[r][v] = correction;
    }
    for (int64_t lane = 0; lane < 4; ++lane) {
      __m512i low[3];
      __m512i high[3];
      for (int v = 0; v < 3; ++v) {
        const __m512i bytes = _mm512_loadu_si512(chunk + kFormat.quants_begin() + lane * kPanelCols * 4 + v * 64);
        low[v] = _mm512_and_si512(bytes, low_nibbles);
        high[v] = _mm512_and_si512(_mm512_srli_epi16(bytes, 4), low_nibbles);
        if constexpr (kFormat.fifth_bit) {
          const uint8_t* masks = chunk + kFormat.fifth_bits_begin();
          uint64_t low_bits = 0;
          uint64_t high_bits = 0;
          std::memcpy(&low_bits, masks + fifth_bit_position(lane * 4, v * 16).mask * 8, 8);
          std::memcpy(&high_bits, masks + fifth_bit_position(16 + lane * 4, v * 16).mask * 8, 8);
          low[v] = _mm512_mask_add_epi8(low[v], _cvtu64_mask64(low_bits), low[v], sixteen);
          high[v] = _mm512_mask_add_epi8(high[v], _cvtu64_mask64(high_bits), high[v], sixteen);
        }
      }
      for (int r = 0; r < kRows; ++r) {
        const __m512i x_low = _mm512_set1_epi32(static_cast<int>(x_units[r * x_stride + lane]));
        const __m512i x_high = _mm512_set1_epi32(static_cast<int>(x_units[r * x_stride + 4 + lane]));
        for (int v = 0; v < 3; ++v) {
          dot[r][v] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(dot[r][v], low[v], x_low), high[v], x_high);
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
        const __m512 step = load_steps_512<kFormat>(chunk, v * 16);
        acc[r][v] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xffff, dot[r][v]), _mm512_mul_ps(x_scale, step), acc[r][v]);
        if constexpr (kFormat.offsets) {
          acc[r][v] = _mm512_fnmadd_ps(x_sum, load_steps_512<kFormat>(chunk, kPanelCols + v * 16), acc[r][v]);
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
  LinearDriver<Weights>::run(Weights{packed, ceil_div(x.cols, 32), quantize_activations_q8_0(x)}, x, out_features,
                             bias, out);
}

// The int8 path of a nibble type, or false.
bool run_int8(QuantType type, ConstMatrixView x, const uint8_t* packed, int64_t out_features, const float* bias,
              MatrixView out) {
  switch (type) {
    case QuantType::q4_0: run_nibble_vnni<QuantType::q4_0>(x, packed, out_features, bias, out); return true;
    case QuantType::q5_0: run_nibble_vnni<QuantType::q5_0>(x, packed, out_features, bias, out); return true;
    case QuantType::q4_1: run_nibble_vnni<QuantType::q4_1>(x, packed, out_features, bias, out); return true;
    case QuantType::q5_1: run_nibble_vnni<QuantType::q5_1>(x, packed, out_features, bias, out); return true;
    case QuantType::q4_k: run_nibble_vnni<QuantType::q4_k>(x, packed, out_features, bias, out); return true;
    case QuantType::q5_k: run_nibble_vnni<QuantType::q5_k>(x, packed, out_features, bias, out); return true;
    case QuantType::q6_k:
    case QuantType::q8_0: break;
  }
  return false;
}
#endif

struct GroupWeights : LinearInPlaceFormat<kPanelCols, kTileRows, kDepthBlock, kTaskRows, kMaxTaskPanels> {
  const uint8_t* packed;
  GroupFormat format;
  int64_t in_groups;
  const LinearTileKernel* tiles;
  LinearTileKernel tile(int rows) const { return tiles[rows - 1]; }
  const void* block(int64_t panel, int64_t depth_begin) const {
    return packed + (panel * in_groups + depth_begin / format.group) * format.chunk_bytes();
  }
  const void* next_block(int64_t panel, int64_t depth_begin) const { return block(panel, depth_begin); }
  int64_t block_bytes(int64_t depth) const { return ceil_div(depth, format.group) * format.chunk_bytes(); }
};

int64_t groups_per_row(QuantType type, int64_t in_features) {
  return quant_row_bytes(type, in_features) / quant_layout(type).bytes * quant_layout(type).values /
         group_format(type).group;
}

// A step or offset into its slot of the chunk, f16 (exact: the file's f16 value) or f32.
void store_step(const GroupFormat& format, float value, uint8_t* slot_base, int64_t slot) {
  if (format.half_steps) {
    const uint16_t bits = f32_to_f16(value);
    std::memcpy(slot_base + slot * 2, &bits, 2);
  } else {
    std::memcpy(slot_base + slot * 4, &value, 4);
  }
}
float load_step(const GroupFormat& format, const uint8_t* slot_base, int64_t slot) {
  if (format.half_steps) {
    uint16_t bits = 0;
    std::memcpy(&bits, slot_base + slot * 2, 2);
    return f16_to_f32(bits);
  }
  float value = 0.0f;
  std::memcpy(&value, slot_base + slot * 4, 4);
  return value;
}

}  // namespace

bool has_int8_linear_path(QuantType type) { return type == QuantType::q8_0 || group_format(type).nibbles; }

int64_t packed_linear_blocks_bytes(QuantType type, int64_t out_features, int64_t in_features) {
  return ceil_div(out_features, kPanelCols) * groups_per_row(type, in_features) * group_format(type).chunk_bytes();
}

void pack_linear_weight_blocks(QuantType type, const uint8_t* rows, int64_t out_features, int64_t in_features,
                               uint8_t* packed) {
  const QuantLayout& layout = quant_layout(type);
  const GroupFormat format = group_format(type);
  const int64_t in_blocks = ceil_div(in_features, layout.values);
  const int64_t in_groups = groups_per_row(type, in_features);
  const int64_t groups_per_block = layout.values / format.group;
  std::memset(packed, 0, static_cast<size_t>(packed_linear_blocks_bytes(type, out_features, in_features)));
  float steps[16];
  float offsets[16];
  int8_t quants[256];
  for (int64_t o = 0; o < out_features; ++o) {
    const int64_t panel = o / kPanelCols;
    const int64_t j = o % kPanelCols;
    for (int64_t b = 0; b < in_blocks; ++b) {
      decode_block_groups(type, rows + (o * in_blocks + b) * layout.bytes, steps, offsets, quants);
      for (int64_t g = 0; g < groups_per_block; ++g) {
        uint8_t* chunk = packed + (panel * in_groups + b * groups_per_block + g) * format.chunk_bytes();
        store_step(format, steps[g], chunk, j);
        if (format.offsets) store_step(format, offsets[g], chunk, kPanelCols + j);
        for (int64_t k = 0; k < format.group; ++k) {
          const int stored = quants[g * format.group + k] - format.bias;
          const QuantPosition at = quant_position(format, k, j);
          if (format.nibbles) {
            chunk[format.quants_begin() + at.byte] |= static_cast<uint8_t>((stored & 0x0f) << at.shift);
          } else {
            chunk[format.quants_begin() + at.byte] = static_cast<uint8_t>(static_cast<int8_t>(stored));
          }
          if (format.fifth_bit && (stored & 0x10) != 0) {
            const FifthBitPosition bit = fifth_bit_position(k, j);
            chunk[format.fifth_bits_begin() + bit.mask * 8 + bit.bit / 8] |= static_cast<uint8_t>(1u << (bit.bit % 8));
          }
        }
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
    const uint8_t* chunk = packed + ((row / kPanelCols) * in_groups + i / format.group) * format.chunk_bytes();
    const int64_t k = i % format.group;
    const float step = load_step(format, chunk, j);
    const float offset = format.offsets ? load_step(format, chunk, kPanelCols + j) : 0.0f;
    const QuantPosition at = quant_position(format, k, j);
    int stored = format.nibbles ? (chunk[format.quants_begin() + at.byte] >> at.shift) & 0x0f
                                : static_cast<int8_t>(chunk[format.quants_begin() + at.byte]);
    if (format.fifth_bit) {
      const FifthBitPosition bit = fifth_bit_position(k, j);
      stored |= ((chunk[format.fifth_bits_begin() + bit.mask * 8 + bit.bit / 8] >> (bit.bit % 8)) & 1) << 4;
    }
    const float scaled = step * static_cast<float>(stored + format.bias);
    values[i] = scaled - offset;
  }
}

void linear_packed_blocks(QuantType type, ConstMatrixView x, const uint8_t* packed, int64_t out_features,
                          const float* bias, MatrixView out, LinearQ8Path path) {
#if defined(__x86_64__)
  if (path == LinearQ8Path::avx512_vnni && cpu_has_avx512_vnni() && run_int8(type, x, packed, out_features, bias, out)) {
    return;
  }
#endif
  (void)path;  // Q6_K, or a CPU without VNNI: f32 activations
  const GroupWeights weights{{}, packed, group_format(type), groups_per_row(type, x.cols), tiles_for(type)};
  LinearDriver<GroupWeights>::run(weights, x, out_features, bias, out);
}

}  // namespace jagged::kernels::cpu
