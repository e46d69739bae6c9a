// The bf16-weight GEMM: out = x * weight^T + bias with the weight stored as bf16 pairs (linear.h) and x rounded
// to bf16 per row block, products of bf16 pairs accumulated in f32. Two tile kernels share the task loop:
// AVX512-BF16 (vdpbf16ps: 16 lanes x 2 products per instruction, twice the f32 FMA's multiply-adds) chosen at
// run time when the CPU has it, and a portable Highway kernel that widens the pairs to f32 and uses FMAs.
#include <omp.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <utility>

#include <hwy/highway.h>

#include "core/threads.h"
#include "kernels/cpu/linear_driver.h"
#include "kernels/cpu/linear_tasks.h"
#include "kernels/linear.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace jagged::kernels::cpu {

namespace {

namespace hn = hwy::HWY_NAMESPACE;

constexpr int64_t kPanelCols = kLinearBf16PanelCols;  // 48 outputs: 3 vectors of 16 f32 lanes (AVX-512)
// A depth block of 128 pairs keeps one panel's block (128 x 48 pairs, 24 KiB) in L1, as the f32 kernel's 128
// floats do. Like there, partial sums are stored at its boundaries: a constant of the arithmetic.
constexpr int64_t kDepthPairs = 128;
constexpr int64_t kTaskRows = 128;
constexpr int64_t kMaxTaskPanels = 4;
constexpr int kAvx512TileRows = 8;  // 8 x 3 accumulators + 3 weight vectors + 1 broadcast of 32 registers
constexpr int kPortableTileRows = 4;

// f32 -> bf16 bits, round to nearest even (as jagged::f32_to_bf16; inline so the row loop vectorises).
inline uint32_t round_to_bf16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return (bits >> 16) | 0x40u;  // NaN stays a (quiet) NaN
  return (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
}

// The tile kernels (LinearTileKernel): acc = init (a panel row of kPanelCols floats) or the tile of c; acc += the
// products of pair k of each x row and pair row k of the panel, for k < pairs; c = acc. x rows are x_stride pairs
// apart, c rows c_stride floats.
using TileKernel = LinearTileKernel;

#if defined(__x86_64__)
constexpr int kAvx512Vectors = static_cast<int>(kPanelCols / 16);

template <int kRows>
__attribute__((target("avx512f,avx512bf16"))) void avx512_bf16_tile(const void* x_data, int64_t x_stride,
                                                                     const void* weights, int64_t pairs,
                                                                     const float* init, float* c, int64_t c_stride) {
  const auto* x = static_cast<const uint32_t*>(x_data);
  const auto* panel = static_cast<const uint32_t*>(weights);
  __m512 acc[kRows][kAvx512Vectors];
  for (int r = 0; r < kRows; ++r) {
    for (int v = 0; v < kAvx512Vectors; ++v) {
      acc[r][v] = _mm512_loadu_ps(init != nullptr ? init + v * 16 : c + r * c_stride + v * 16);
    }
  }
  for (int64_t k = 0; k < pairs; ++k) {
    const uint32_t* w = panel + k * kPanelCols;
    __m512bh weights[kAvx512Vectors];
    for (int v = 0; v < kAvx512Vectors; ++v) weights[v] = (__m512bh)_mm512_load_si512(w + v * 16);
    for (int r = 0; r < kRows; ++r) {
      const __m512bh broadcast = (__m512bh)_mm512_set1_epi32(static_cast<int>(x[r * x_stride + k]));
      for (int v = 0; v < kAvx512Vectors; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], broadcast, weights[v]);
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int v = 0; v < kAvx512Vectors; ++v) _mm512_storeu_ps(c + r * c_stride + v * 16, acc[r][v]);
  }
}

template <int... kRows>
constexpr auto make_avx512_tiles(std::integer_sequence<int, kRows...>) {
  return std::array<TileKernel, sizeof...(kRows)>{&avx512_bf16_tile<kRows + 1>...};
}
#endif

// The portable kernel: each pair widened to two f32 values (bf16 is the top half of an f32), then two FMAs, odd
// element first (vdpbf16ps's documented order). The panel's columns go in groups of three vectors.
template <int kRows>
void portable_tile(const void* x_data, int64_t x_stride, const void* weights, int64_t pairs, const float* init,
                   float* c, int64_t c_stride) {
  const auto* x = static_cast<const uint32_t*>(x_data);
  const auto* panel = static_cast<const uint32_t*>(weights);
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  using FloatVec = hn::Vec<decltype(df)>;
  constexpr int kVectors = 3;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const auto high_half = hn::Set(du, 0xffff0000u);
  for (int64_t group = 0; group < kPanelCols; group += kVectors * lanes) {
    const int64_t width = std::min<int64_t>(kVectors, (kPanelCols - group) / lanes);
    FloatVec acc[kRows][kVectors];
    for (int r = 0; r < kRows; ++r) {
      for (int v = 0; v < kVectors; ++v) {
        acc[r][v] = v < width ? hn::LoadU(df, (init != nullptr ? init : c + r * c_stride) + group + v * lanes)
                              : hn::Zero(df);
      }
    }
    for (int64_t k = 0; k < pairs; ++k) {
      const uint32_t* w = panel + k * kPanelCols + group;
      FloatVec even[kVectors];
      FloatVec odd[kVectors];
      for (int v = 0; v < kVectors; ++v) {
        const auto bits = v < width ? hn::LoadU(du, w + v * lanes) : hn::Zero(du);
        even[v] = hn::BitCast(df, hn::ShiftLeft<16>(bits));
        odd[v] = hn::BitCast(df, hn::And(bits, high_half));
      }
      for (int r = 0; r < kRows; ++r) {
        const uint32_t pair = x[r * x_stride + k];
        const FloatVec x_even = hn::Set(df, std::bit_cast<float>(pair << 16));
        const FloatVec x_odd = hn::Set(df, std::bit_cast<float>(pair & 0xffff0000u));
        for (int v = 0; v < kVectors; ++v) acc[r][v] = hn::MulAdd(x_even, even[v], hn::MulAdd(x_odd, odd[v], acc[r][v]));
      }
    }
    for (int r = 0; r < kRows; ++r) {
      for (int v = 0; v < width; ++v) hn::StoreU(acc[r][v], df, c + r * c_stride + group + v * lanes);
    }
  }
}

template <int... kRows>
constexpr auto make_portable_tiles(std::integer_sequence<int, kRows...>) {
  return std::array<TileKernel, sizeof...(kRows)>{&portable_tile<kRows + 1>...};
}

// tiles[n - 1] computes n rows: the same per-element arithmetic for any n.
struct TileSet {
  const TileKernel* tiles;
  int tile_rows;
};

TileSet tile_set(LinearBf16Path path) {
#if defined(__x86_64__)
  static constexpr auto kAvx512 = make_avx512_tiles(std::make_integer_sequence<int, kAvx512TileRows>{});
  if (path == LinearBf16Path::avx512_bf16) return {kAvx512.data(), kAvx512TileRows};
#endif
  static constexpr auto kPortable = make_portable_tiles(std::make_integer_sequence<int, kPortableTileRows>{});
  (void)path;
  return {kPortable.data(), kPortableTileRows};
}

// x rows [row_begin, row_end), inputs [2 * pair_begin, 2 * (pair_begin + pairs)) -> bf16 pairs in x_pairs
// [rows, kDepthPairs], zero past in_features (the packed weight is zero there too).
void convert_x_block(ConstMatrixView x, int64_t row_begin, int64_t row_end, int64_t pair_begin, int64_t pairs,
                     uint32_t* x_pairs) {
  const int64_t col_begin = 2 * pair_begin;
  const int64_t cols = std::min(2 * pairs, x.cols - col_begin);
  for (int64_t r = row_begin; r < row_end; ++r) {
    const float* source = x.row(r) + col_begin;
    uint32_t* target = x_pairs + (r - row_begin) * kDepthPairs;
    for (int64_t k = 0; k < cols / 2; ++k) {
      target[k] = round_to_bf16(source[2 * k]) | (round_to_bf16(source[2 * k + 1]) << 16);
    }
    if (cols % 2 != 0) target[cols / 2] = round_to_bf16(source[cols - 1]);
  }
}

// The packed pairs, read in place; x converted to bf16 pairs once per task and depth block (64 KiB per thread,
// reused by the task's panels).
struct Bf16Weights {
  static constexpr int64_t kPanelCols = cpu::kPanelCols;
  static constexpr int64_t kMaxTileRows = std::max(kAvx512TileRows, kPortableTileRows);
  static constexpr int64_t kDepthBlock = kDepthPairs;
  static constexpr int64_t kTaskRows = cpu::kTaskRows;
  static constexpr int64_t kMaxTaskPanels = cpu::kMaxTaskPanels;
  static constexpr bool kXInPlace = false;
  const uint32_t* packed;
  int64_t in_pairs;
  TileSet tiles;
  static int64_t depth(int64_t in_features) { return ceil_div(in_features, 2); }
  static const uint32_t* x_block(ConstMatrixView x, int64_t row_begin, int64_t row_end, int64_t pair_begin,
                                 int64_t pairs) {
    alignas(64) static thread_local uint32_t x_pairs[kTaskRows * kDepthPairs];
    convert_x_block(x, row_begin, row_end, pair_begin, pairs, x_pairs);
    return x_pairs;
  }
  static int64_t x_block_stride() { return kDepthPairs; }
  const void* block(int64_t panel, int64_t pair_begin) const {
    return packed + (panel * in_pairs + pair_begin) * kPanelCols;
  }
  const void* next_block(int64_t panel, int64_t pair_begin) const { return block(panel, pair_begin); }
  int64_t block_bytes(int64_t pairs) const { return pairs * kPanelCols * static_cast<int64_t>(sizeof(uint32_t)); }
  int tile_rows() const { return tiles.tile_rows; }
  LinearTileKernel tile(int rows) const { return tiles.tiles[rows - 1]; }
};

}  // namespace

LinearBf16Path best_linear_bf16_path() {
#if defined(__x86_64__)
  static const bool has_bf16 = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
  }();
  if (has_bf16) return LinearBf16Path::avx512_bf16;
#endif
  return LinearBf16Path::portable;
}

const char* linear_bf16_path_name(LinearBf16Path path) {
  return path == LinearBf16Path::avx512_bf16 ? "avx512-bf16" : "portable-bf16 (widened to f32 FMA)";
}

int64_t packed_linear_bf16_pairs(int64_t out_features, int64_t in_features) {
  return ceil_div(out_features, kPanelCols) * kPanelCols * ceil_div(in_features, 2);
}

void pack_linear_weight_bf16(const float* weight, int64_t out_features, int64_t in_features, uint32_t* packed) {
  const int64_t panels = ceil_div(out_features, kPanelCols);
  const int64_t in_pairs = ceil_div(in_features, 2);
#pragma omp parallel for schedule(static) if (panels > 1 && num_threads() > 1)
  for (int64_t panel = 0; panel < panels; ++panel) {
    uint32_t* target = packed + panel * in_pairs * kPanelCols;
    for (int64_t j = 0; j < kPanelCols; ++j) {
      const int64_t o = panel * kPanelCols + j;
      const float* row = weight + o * in_features;
      for (int64_t k = 0; k < in_pairs; ++k) {
        const uint32_t even = o < out_features ? round_to_bf16(row[2 * k]) : 0;
        const uint32_t odd = o < out_features && 2 * k + 1 < in_features ? round_to_bf16(row[2 * k + 1]) : 0;
        target[k * kPanelCols + j] = even | (odd << 16);
      }
    }
  }
}

void unpack_linear_weight_bf16(const uint32_t* packed, int64_t out_features, int64_t in_features, float* weight) {
  const int64_t in_pairs = ceil_div(in_features, 2);
  for (int64_t o = 0; o < out_features; ++o) {
    const uint32_t* panel = packed + (o / kPanelCols) * in_pairs * kPanelCols + o % kPanelCols;
    for (int64_t i = 0; i < in_features; ++i) {
      const uint32_t pair = panel[(i / 2) * kPanelCols];
      weight[o * in_features + i] = std::bit_cast<float>(i % 2 == 0 ? pair << 16 : pair & 0xffff0000u);
    }
  }
}

void linear_packed_bf16(ConstMatrixView x, const uint32_t* packed, int64_t out_features, const float* bias,
                        MatrixView out, LinearBf16Path path) {
  if (path == LinearBf16Path::avx512_bf16 && best_linear_bf16_path() != LinearBf16Path::avx512_bf16) {
    path = LinearBf16Path::portable;  // never run an instruction the CPU lacks
  }
  const Bf16Weights weights{packed, ceil_div(x.cols, 2), tile_set(path)};
  LinearDriver<Bf16Weights>::run(weights, x, out_features, bias, out);
}

}  // namespace jagged::kernels::cpu
