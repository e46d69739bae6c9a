// The Q8_0-weight GEMM: llama.cpp's Q8_0 blocks (32 int8 values q and one f16 scale d per block of a row),
// repacked into 48-wide column panels. Two tile kernels share the packed weight and the task loop:
// - avx512-vnni (chosen at run time when cpuid has AVX512-VNNI and AVX512BW): as llama.cpp, each activation row is
//   rounded to Q8_0 blocks (per 32 values: dx = max |x| / 127 held as f16, qx = round(x / dx) in int8) and each
//   output takes, per block, the exact int32 dot product of qx and q (vpdpbusd: 64 multiply-adds per instruction
//   against 16 for an f32 FMA), then acc = fma(float(dot), dx * d, acc) in f32, block after block.
// - f32: the weight dequantized in registers (w = d * q, exact in f32: an 11-bit by 8-bit product) and multiplied
//   with f32 FMAs in the f32 kernel's order: activations stay f32, and the result is bit for bit the f32 kernel's
//   on the dequantized weight (same tile, depth blocks, FMA chain).
// The weight is read at 34 bytes per 32 values, a quarter of f32's, which is what decode is bound by.
#include <omp.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include <hwy/highway.h>

#include "core/threads.h"
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

constexpr int64_t kPanelCols = kLinearQ8PanelCols;  // 48
constexpr int64_t kBlock = kQ8Block;                // 32 values per scale
constexpr int64_t kGroup = kLinearQ8Group;          // 4 inputs per 32-bit lane
constexpr int64_t kScaleBytes = kPanelCols * 2;     // 48 f16
constexpr int64_t kGroupBytes = kPanelCols * kGroup;
constexpr int64_t kBlockBytes = kLinearQ8PanelBlockBytes;
constexpr uint32_t kBiasBytes = 0x80808080u;  // q + 128 as u8 in each byte: q ^ 0x80
constexpr int64_t kDepthBlock = 128;  // as the f32 kernel: partial sums stored at the same boundaries
constexpr int64_t kTaskRows = 128;
constexpr int64_t kMaxTaskPanels = 4;
static_assert(kDepthBlock % kBlock == 0 && kBlock % kGroup == 0);

// Where quant q[o, k] of a block lives: group k / 4, output j of the panel, byte k % 4 of its 32-bit lane.
constexpr int64_t quant_offset(int64_t k, int64_t j) {
  return kScaleBytes + (k / kGroup) * kGroupBytes + j * kGroup + k % kGroup;
}

// ---- f32 activations: dequantize in registers, FMA chain ----

constexpr int64_t kLanes = static_cast<int64_t>(HWY_MAX_BYTES / sizeof(float));
constexpr int kVectors = static_cast<int>(kPanelCols / kLanes);
constexpr int kF32TileRows = kLanes >= 16 ? 8 : 2;
static_assert(kPanelCols % kLanes == 0);

// acc = init or the tile of c; acc += x[r, k] * (d * q)[k, :] for k < depth, blocks from `weights` (the depth
// block's first); c = acc.
template <int kRows>
void f32_tile(const void* x_data, int64_t x_stride, const void* weights, int64_t depth, const float* init, float* c,
              int64_t c_stride, TilePrefetch prefetch) {
  const FloatTag df;
  const auto* x = static_cast<const float*>(x_data);
  const auto* blocks = static_cast<const uint8_t*>(weights);
  const hn::Rebind<int32_t, FloatTag> d32;
  const hn::Rebind<hwy::float16_t, FloatTag> dh;
  const auto unbias = hn::Set(d32, static_cast<int32_t>(kBiasBytes));
  FloatVec acc[kRows][kVectors];
  for (int r = 0; r < kRows; ++r) {
    for (int v = 0; v < kVectors; ++v) {
      acc[r][v] = hn::LoadU(df, (init != nullptr ? init : c + r * c_stride) + v * kLanes);
    }
  }
  const TilePrefetch spread = prefetch.over(ceil_div(depth, kBlock));
  for (int64_t block_begin = 0; block_begin < depth; block_begin += kBlock) {
    spread.step(block_begin / kBlock);
    const uint8_t* block = blocks + block_begin / kBlock * kBlockBytes;
    FloatVec scale[kVectors];
    for (int v = 0; v < kVectors; ++v) {
      scale[v] = hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(block) + v * kLanes));
    }
    const int64_t block_end = std::min(kBlock, depth - block_begin);
    for (int64_t group = 0; group < block_end; group += kGroup) {
      // Four inputs per 32-bit lane: back to signed bytes, then byte i sign-extended by two shifts.
      hn::Vec<decltype(d32)> lanes[kVectors];
      for (int v = 0; v < kVectors; ++v) {
        lanes[v] = hn::Xor(hn::LoadU(d32, reinterpret_cast<const int32_t*>(block + quant_offset(group, 0)) + v * kLanes),
                           unbias);
      }
      for (int64_t i = 0; i < std::min(kGroup, block_end - group); ++i) {
        const int left = static_cast<int>(24 - 8 * i);
        FloatVec weights_k[kVectors];
        for (int v = 0; v < kVectors; ++v) {
          const auto q = hn::ShiftRight<24>(hn::ShiftLeftSame(lanes[v], left));
          weights_k[v] = hn::Mul(hn::ConvertTo(df, q), scale[v]);
        }
        for (int r = 0; r < kRows; ++r) {
          const FloatVec broadcast = hn::Set(df, x[r * x_stride + block_begin + group + i]);
          for (int v = 0; v < kVectors; ++v) acc[r][v] = hn::MulAdd(broadcast, weights_k[v], acc[r][v]);
        }
      }
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int v = 0; v < kVectors; ++v) hn::StoreU(acc[r][v], df, c + r * c_stride + v * kLanes);
  }
}

template <int... kRows>
constexpr auto make_f32_tiles(std::integer_sequence<int, kRows...>) {
  return std::array<LinearTileKernel, sizeof...(kRows)>{&f32_tile<kRows + 1>...};
}
constexpr auto kF32Tiles = make_f32_tiles(std::make_integer_sequence<int, kF32TileRows>{});

// The packed blocks, read in place (dequantized in the tile kernel's registers); x read in place.
struct Q8F32Weights : LinearInPlaceFormat<kPanelCols, kF32TileRows, kDepthBlock, kTaskRows, kMaxTaskPanels> {
  const uint8_t* packed;
  int64_t in_blocks;
  static LinearTileKernel tile(int rows) { return kF32Tiles[static_cast<size_t>(rows - 1)]; }
  const void* block(int64_t panel, int64_t depth_begin) const {
    return packed + (panel * in_blocks + depth_begin / kBlock) * kBlockBytes;
  }
  const void* next_block(int64_t panel, int64_t depth_begin) const { return block(panel, depth_begin); }
  int64_t block_bytes(int64_t depth) const { return ceil_div(depth, kBlock) * kBlockBytes; }
};

// ---- int8 activations: AVX512-VNNI ----
//
// vpdpbusd multiplies unsigned bytes by signed bytes. Both operands here are signed (qx and q in [-127, 127]), so
// one is offset by 128: the weight is stored as q + 128 (u8, packed once; the same bytes serve the f32 path,
// which takes the 128 back off), and the dot product of a block is sum((q + 128) qx) - 128 sum(qx). The
// correction depends on the activation block only: it is computed with the quantization (one int32 per row and
// block) and starts the int32 accumulator. The alternatives cost more where it matters: offsetting x instead
// needs 128 sum(q) per output and block stored beside the weight (12% more bytes streamed in decode), and
// llama.cpp's sign trick (|qx| as u8, qx's sign moved onto q with vpsignb) needs one vpsignb per weight vector
// and row, doubling the instructions of a GEMM tile.
//
// The activations: rounded to Q8_0 blocks once per call (linear_int8.h, quantize_activations_q8_0).
constexpr int64_t kXBlockUnits = kInt8XBlockUnits;

#if defined(__x86_64__)
constexpr int kVnniTileRows = 4;  // 4 x 3 int32 + 4 x 3 f32 accumulators + 3 weight vectors + 1 broadcast
// 16 blocks: one panel's (26 KiB) stays in L1 across a task's row tiles. Measured against 128 (the f32 path's):
// a few percent faster. Not part of the arithmetic here: the f32 sums are stored and reloaded exactly.
constexpr int64_t kVnniDepthBlock = 512;

// (GCC 12 warns "used uninitialized" inside avx512fintrin.h's unmasked conversions, max and reductions when the
// file is built without -march=native: the masked forms, with all lanes on, are the same instructions.)
constexpr __mmask16 kAllLanes = 0xffff;

// The largest of 16 lanes, and the sum of 16 int32 lanes (both exact in any order).
__attribute__((target("avx512f"))) float max_of_lanes(__m512 v) {
  const __m256 low = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0x0f, _mm512_castps_pd(v), 0));
  const __m256 high = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0x0f, _mm512_castps_pd(v), 1));
  const __m256 m8 = _mm256_max_ps(low, high);
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  return _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
}
__attribute__((target("avx512f"))) int32_t sum_of_lanes(__m512i v) {
  const __m256i s8 =
      _mm256_add_epi32(_mm512_maskz_extracti64x4_epi64(0x0f, v, 0), _mm512_maskz_extracti64x4_epi64(0x0f, v, 1));
  __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
  return _mm_cvtsi128_si32(s4);
}

// llama.cpp's quantize_row_q8_0 for x86 (ggml-cpu/arch/x86/quants.c) on count <= 32 values (zero past count):
// amax = max |x|, dx = amax / 127 rounded to f16, q = round-to-nearest-even(x * (127 / amax)) (the multiplier is
// 127 / amax, not 1 / dx: the quants do not see the f16 rounding of the scale). Writes kXBlockUnits units.
__attribute__((target("avx512f,avx512bw"))) void quantize_activation_block(const float* values, int64_t count,
                                                                           uint32_t* target) {
  const __mmask16 low = count >= 16 ? __mmask16{0xffff} : static_cast<__mmask16>((1u << count) - 1u);
  const __mmask16 high = count >= 32   ? __mmask16{0xffff}
                         : count <= 16 ? __mmask16{0}
                                       : static_cast<__mmask16>((1u << (count - 16)) - 1u);
  const __m512 v0 = _mm512_maskz_loadu_ps(low, values);
  const __m512 v1 = _mm512_maskz_loadu_ps(high, values + 16);
  const float amax = max_of_lanes(_mm512_maskz_max_ps(kAllLanes, _mm512_abs_ps(v0), _mm512_abs_ps(v1)));
  // A NaN would drop out of the max and round to 0: make the block's scale NaN instead, so that the row's
  // outputs are NaN as on the f32 path (an infinity gives scale inf and quants 0: NaN outputs too).
  const bool has_nan = (_mm512_cmp_ps_mask(v0, v0, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(v1, v1, _CMP_UNORD_Q)) != 0;
  const float scale = has_nan ? std::numeric_limits<float>::quiet_NaN() : f16_to_f32(f32_to_f16(amax / 127.0f));
  const __m512 multiplier = _mm512_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
  constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  const __m512i q0 = _mm512_maskz_cvt_roundps_epi32(kAllLanes, _mm512_mul_ps(v0, multiplier), kRound);
  const __m512i q1 = _mm512_maskz_cvt_roundps_epi32(kAllLanes, _mm512_mul_ps(v1, multiplier), kRound);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(target), _mm512_maskz_cvtepi32_epi8(kAllLanes, q0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(target + 4), _mm512_maskz_cvtepi32_epi8(kAllLanes, q1));
  target[8] = std::bit_cast<uint32_t>(scale);
  // -128 sum(qx) in wrapping u32 arithmetic: the same bits for finite x (|sum| <= 32 * 127), and no signed
  // overflow for a NaN block, whose conversions give INT_MIN (its scale is NaN: the row's outputs are NaN anyway).
  const auto low_sum = static_cast<uint32_t>(sum_of_lanes(q0));
  target[9] = (low_sum + static_cast<uint32_t>(sum_of_lanes(q1))) * static_cast<uint32_t>(-128);
  target[10] = low_sum;
}

// Every row rounded once per call, before the task loop (rounding per task would repeat it for every group of
// panels, and read f32 x in a burst of short rows the prefetcher does not follow).
void quantize_activations(ConstMatrixView x, int64_t in_blocks, uint32_t* x_units) {
  const int64_t row_units = in_blocks * kXBlockUnits;
#pragma omp parallel for schedule(static) if (x.rows >= 64 && num_threads() > 1)
  for (int64_t r = 0; r < x.rows; ++r) {
    for (int64_t b = 0; b < in_blocks; ++b) {
      quantize_activation_block(x.row(r) + b * kBlock, std::min(kBlock, x.cols - b * kBlock),
                                x_units + r * row_units + b * kXBlockUnits);
    }
  }
}

// acc = init or the tile of c; per block b of the depth block: dot = -128 sum(qx) + sum over the 8 groups of
// vpdpbusd(q + 128, qx) (exact int32), acc = fma(float(dot), dx * d, acc); c = acc. x: converted rows
// (kXBlockUnits per block), x_stride units apart.
template <int kRows>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void vnni_tile(const void* x_data, int64_t x_stride,
                                                                        const void* weights, int64_t depth,
                                                                        const float* init, float* c,
                                                                        int64_t c_stride, TilePrefetch prefetch) {
  const auto* x = static_cast<const uint32_t*>(x_data);
  const auto* blocks = static_cast<const uint8_t*>(weights);
  __m512 acc[kRows][kVectors];
  for (int r = 0; r < kRows; ++r) {
    for (int v = 0; v < kVectors; ++v) {
      acc[r][v] = _mm512_loadu_ps(init != nullptr ? init + v * 16 : c + r * c_stride + v * 16);
    }
  }
  const int64_t block_count = ceil_div(depth, kBlock);
  const TilePrefetch spread = prefetch.over(block_count);
  for (int64_t b = 0; b < block_count; ++b) {
    spread.step(b);
    const uint8_t* block = blocks + b * kBlockBytes;
    const uint32_t* x_units = x + b * kXBlockUnits;
    __m512i dot[kRows][kVectors];
    for (int r = 0; r < kRows; ++r) {
      const __m512i correction = _mm512_set1_epi32(static_cast<int>(x_units[r * x_stride + 9]));
      for (int v = 0; v < kVectors; ++v) dot[r][v] = correction;
    }
    for (int64_t group = 0; group < kBlock / kGroup; ++group) {
      __m512i weights_g[kVectors];
      for (int v = 0; v < kVectors; ++v) {
        weights_g[v] = _mm512_loadu_si512(block + kScaleBytes + group * kGroupBytes + v * 64);
      }
      for (int r = 0; r < kRows; ++r) {
        const __m512i broadcast = _mm512_set1_epi32(static_cast<int>(x_units[r * x_stride + group]));
        for (int v = 0; v < kVectors; ++v) dot[r][v] = _mm512_dpbusd_epi32(dot[r][v], weights_g[v], broadcast);
      }
    }
    __m512 scale[kVectors];
    for (int v = 0; v < kVectors; ++v) {
      scale[v] = _mm512_maskz_cvtph_ps(kAllLanes, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block) + v));
    }
    for (int r = 0; r < kRows; ++r) {
      const __m512 x_scale = _mm512_set1_ps(std::bit_cast<float>(x_units[r * x_stride + 8]));
      for (int v = 0; v < kVectors; ++v) {
        acc[r][v] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(kAllLanes, dot[r][v]), _mm512_mul_ps(x_scale, scale[v]), acc[r][v]);
      }
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int v = 0; v < kVectors; ++v) _mm512_storeu_ps(c + r * c_stride + v * 16, acc[r][v]);
  }
}

template <int... kRows>
constexpr auto make_vnni_tiles(std::integer_sequence<int, kRows...>) {
  return std::array<LinearTileKernel, sizeof...(kRows)>{&vnni_tile<kRows + 1>...};
}
constexpr auto kVnniTiles = make_vnni_tiles(std::make_integer_sequence<int, kVnniTileRows>{});
using Q8VnniWeights =
    Int8BlockWeights<kPanelCols, kBlockBytes, kVnniDepthBlock, kTaskRows, kMaxTaskPanels, kVnniTileRows, kVnniTiles>;
#endif

}  // namespace

bool cpu_has_avx512_vnni() {
#if defined(__x86_64__)
  static const bool has_vnni = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vnni");
  }();
  return has_vnni;
#else
  return false;
#endif
}

const uint32_t* quantize_activations_q8_0(ConstMatrixView x) {
#if defined(__x86_64__)
  if (!cpu_has_avx512_vnni()) return nullptr;
  const int64_t in_blocks = ceil_div(x.cols, kBlock);
  // The calling thread's buffer, grown to the largest call (prefill of 4k rows x 2048 inputs: 10 MiB).
  static thread_local std::vector<uint32_t> x_units;
  x_units.resize(std::max(x_units.size(), static_cast<size_t>(x.rows * in_blocks * kXBlockUnits)));
  quantize_activations(x, in_blocks, x_units.data());
  return x_units.data();
#else
  (void)x;
  return nullptr;
#endif
}

LinearQ8Path best_linear_q8_0_path() {
  return cpu_has_avx512_vnni() ? LinearQ8Path::avx512_vnni : LinearQ8Path::f32;
}

const char* linear_q8_0_path_name(LinearQ8Path path) {
  return path == LinearQ8Path::avx512_vnni ? "avx512-vnni" : "q8_0 (int8 blocks dequantized to f32 registers, FMA)";
}

void quantize_q8_0_block(const float* values, int64_t count, uint16_t& scale, int8_t* quants) {
  float amax = 0.0f;
  for (int64_t i = 0; i < count; ++i) amax = std::max(amax, std::fabs(values[i]));
  const float d = amax / 127.0f;
  const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
  scale = f32_to_f16(d);
  for (int64_t i = 0; i < kBlock; ++i) {
    quants[i] = i < count ? static_cast<int8_t>(std::round(values[i] * inverse)) : 0;
  }
}

int64_t packed_linear_q8_0_bytes(int64_t out_features, int64_t in_features) {
  return ceil_div(out_features, kPanelCols) * ceil_div(in_features, kBlock) * kBlockBytes;
}

void pack_linear_weight_q8_0(const float* weight, int64_t out_features, int64_t in_features, uint8_t* packed) {
  const int64_t panels = ceil_div(out_features, kPanelCols);
  const int64_t in_blocks = ceil_div(in_features, kBlock);
  std::memset(packed, 0, static_cast<size_t>(packed_linear_q8_0_bytes(out_features, in_features)));
#pragma omp parallel for schedule(static) if (panels > 1 && num_threads() > 1)
  for (int64_t panel = 0; panel < panels; ++panel) {
    for (int64_t j = 0; j < kPanelCols; ++j) {
      const int64_t o = panel * kPanelCols + j;
      if (o >= out_features) break;
      for (int64_t b = 0; b < in_blocks; ++b) {
        uint8_t* block = packed + (panel * in_blocks + b) * kBlockBytes;
        uint16_t scale = 0;
        int8_t quants[kBlock];
        quantize_q8_0_block(weight + o * in_features + b * kBlock, std::min(kBlock, in_features - b * kBlock), scale,
                            quants);
        std::memcpy(block + j * 2, &scale, 2);
        for (int64_t k = 0; k < kBlock; ++k) block[quant_offset(k, j)] = static_cast<uint8_t>(quants[k]) ^ 0x80u;
      }
    }
  }
  // Past out_features the panel stays zero: scales 0, so the stored bytes (q + 128 = 0) never count.
}

void unpack_linear_row_q8_0(const uint8_t* packed, int64_t in_features, int64_t row, float* values) {
  const int64_t in_blocks = ceil_div(in_features, kBlock);
  const int64_t j = row % kPanelCols;
  for (int64_t i = 0; i < in_features; ++i) {
    const uint8_t* block = packed + ((row / kPanelCols) * in_blocks + i / kBlock) * kBlockBytes;
    uint16_t scale = 0;
    std::memcpy(&scale, block + j * 2, 2);
    const auto q = static_cast<int8_t>(block[quant_offset(i % kBlock, j)] ^ 0x80u);
    values[i] = f16_to_f32(scale) * static_cast<float>(q);
  }
}

void unpack_linear_weight_q8_0(const uint8_t* packed, int64_t out_features, int64_t in_features, float* weight) {
  for (int64_t o = 0; o < out_features; ++o) unpack_linear_row_q8_0(packed, in_features, o, weight + o * in_features);
}

void pack_linear_weight_q8_0_blocks(const uint8_t* rows, int64_t out_features, int64_t in_features, uint8_t* packed) {
  const int64_t in_blocks = ceil_div(in_features, kBlock);
  std::memset(packed, 0, static_cast<size_t>(packed_linear_q8_0_bytes(out_features, in_features)));
  for (int64_t o = 0; o < out_features; ++o) {
    const int64_t j = o % kPanelCols;
    for (int64_t b = 0; b < in_blocks; ++b) {
      const uint8_t* source = rows + (o * in_blocks + b) * 34;
      uint8_t* block = packed + ((o / kPanelCols) * in_blocks + b) * kBlockBytes;
      std::memcpy(block + j * 2, source, 2);
      for (int64_t k = 0; k < kBlock; ++k) block[quant_offset(k, j)] = source[2 + k] ^ 0x80u;
    }
  }
}

void linear_packed_q8_0(ConstMatrixView x, const uint8_t* packed, int64_t out_features, const float* bias,
                        MatrixView out, LinearQ8Path path) {
  const int64_t in_blocks = ceil_div(x.cols, kBlock);
#if defined(__x86_64__)
  if (path == LinearQ8Path::avx512_vnni && best_linear_q8_0_path() == LinearQ8Path::avx512_vnni) {
    const uint32_t* x_units = quantize_activations_q8_0(x);
    LinearDriver<Q8VnniWeights>::run(Q8VnniWeights{packed, in_blocks, x_units}, x, out_features, bias, out);
    return;
  }
#endif
  (void)path;  // never run an instruction the CPU lacks: the f32 path
  LinearDriver<Q8F32Weights>::run(Q8F32Weights{{}, packed, in_blocks}, x, out_features, bias, out);
}

}  // namespace jagged::kernels::cpu
