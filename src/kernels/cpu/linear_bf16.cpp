// The bf16-weight GEMM: out = x * weight^T + bias with the weight stored as bf16 pairs (linear.h) and x rounded
// to bf16 per row block, products of bf16 pairs accumulated in f32. Three tile kernels share the task loop,
// chosen at run time by what the CPU has: AMX tiles (tdpbf16ps: a 16 x 16 f32 tile += 16 x 32 bf16 times
// 32 x 16 bf16 per instruction; the packed pair panels are already the B-tile layout AMX wants), AVX512-BF16
// (vdpbf16ps: 16 lanes x 2 products per instruction, twice the f32 FMA's multiply-adds), and a portable Highway
// kernel that widens the pairs to f32 and uses FMAs.
#include <omp.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include <hwy/highway.h>

#include "core/threads.h"
#include "kernels/cpu/linear_driver.h"
#include "kernels/cpu/linear_tasks.h"
#include "kernels/linear.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
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
constexpr int kAmxTileRows = 16;  // an AMX tile's rows
static_assert(kTaskRows % kAmxTileRows == 0, "AMX tiles read whole 16-row slices of a task's x block");

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
                                                                     const float* init, float* c, int64_t c_stride,
                                                                     TilePrefetch prefetch) {
  const auto* x = static_cast<const uint32_t*>(x_data);
  const auto* panel = static_cast<const uint32_t*>(weights);
  __m512 acc[kRows][kAvx512Vectors];
  for (int r = 0; r < kRows; ++r) {
    for (int v = 0; v < kAvx512Vectors; ++v) {
      acc[r][v] = _mm512_loadu_ps(init != nullptr ? init + v * 16 : c + r * c_stride + v * 16);
    }
  }
  const TilePrefetch spread = prefetch.over(pairs);
  for (int64_t k = 0; k < pairs; ++k) {
    spread.step(k);
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

#if defined(__x86_64__)
// AMX. Tiles 0-2: the 16 x 48 f32 accumulator (three 16 x 16 C tiles); tile 3: 16 rows x 16 x pairs (A);
// tiles 4-6: 16 pair rows x 16 columns of the panel (B), which is exactly the panel's layout (row k = the 48
// columns' pair k, 192 bytes apart). Every tile is 16 rows of 64 bytes: one configuration for everything.
struct alignas(64) AmxTileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {64, 64, 64, 64, 64, 64, 64};
  uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16};
};
static_assert(sizeof(AmxTileConfig) == 64);
constexpr AmxTileConfig kAmxConfig{};
constexpr int64_t kAmxPairs = 16;  // pairs per A tile row

// The tile kernel: kRows rows of x (x_stride pairs apart; a full task's x block lies behind them, so the A tile
// may read up to 16 rows, of which only kRows reach c). Depth steps of 16 pairs in order; a last partial step
// runs on zero-padded copies (0 x 0 products leave the sums unchanged). The configuration is loaded on every
// call because other code on the thread (oneDNN) may configure or release the tiles in between.
template <int kRows>
__attribute__((target("amx-tile,amx-bf16"))) void amx_bf16_tile(const void* x_data, int64_t x_stride,
                                                                const void* weights, int64_t pairs,
                                                                const float* init, float* c, int64_t c_stride,
                                                                TilePrefetch prefetch) {
  prefetch.all();  // a depth step of 16 pairs is too coarse to spread them over
  const auto* x = static_cast<const uint32_t*>(x_data);
  const auto* panel = static_cast<const uint32_t*>(weights);
  constexpr int64_t kPanelBytes = kPanelCols * sizeof(uint32_t);
  _tile_loadconfig(&kAmxConfig);
  // Full tiles accumulate in c itself; a bias start or fewer rows go through a 16 x 48 copy.
  const bool in_place = kRows == kAmxTileRows && init == nullptr;
  alignas(64) float staged[kAmxTileRows * kPanelCols];
  float* acc = c;
  int64_t acc_stride = c_stride;
  if (!in_place) {
    for (int r = 0; r < kAmxTileRows; ++r) {
      const float* source = r >= kRows ? nullptr : init != nullptr ? init : c + r * c_stride;
      if (source != nullptr) {
        std::memcpy(staged + r * kPanelCols, source, kPanelBytes);
      } else {
        std::memset(staged + r * kPanelCols, 0, kPanelBytes);
      }
    }
    acc = staged;
    acc_stride = kPanelCols;
  }
  const int64_t acc_bytes = acc_stride * static_cast<int64_t>(sizeof(float));
  _tile_loadd(0, acc, acc_bytes);
  _tile_loadd(1, acc + 16, acc_bytes);
  _tile_loadd(2, acc + 32, acc_bytes);
  const int64_t x_bytes = x_stride * static_cast<int64_t>(sizeof(uint32_t));
  const int64_t full = pairs / kAmxPairs * kAmxPairs;
  for (int64_t k = 0; k < full; k += kAmxPairs) {
    const uint32_t* w = panel + k * kPanelCols;
    _tile_loadd(3, x + k, x_bytes);
    _tile_loadd(4, w, kPanelBytes);
    _tile_loadd(5, w + 16, kPanelBytes);
    _tile_loadd(6, w + 32, kPanelBytes);
    _tile_dpbf16ps(0, 3, 4);
    _tile_dpbf16ps(1, 3, 5);
    _tile_dpbf16ps(2, 3, 6);
  }
  if (full < pairs) {
    const int64_t rest = pairs - full;
    alignas(64) uint32_t x_rest[kAmxTileRows * kAmxPairs] = {};
    alignas(64) uint32_t w_rest[kAmxPairs * kPanelCols] = {};
    for (int r = 0; r < kRows; ++r) std::memcpy(x_rest + r * kAmxPairs, x + r * x_stride + full, rest * 4);
    std::memcpy(w_rest, panel + full * kPanelCols, static_cast<size_t>(rest) * kPanelBytes);
    _tile_loadd(3, x_rest, kAmxPairs * 4);
    _tile_loadd(4, w_rest, kPanelBytes);
    _tile_loadd(5, w_rest + 16, kPanelBytes);
    _tile_loadd(6, w_rest + 32, kPanelBytes);
    _tile_dpbf16ps(0, 3, 4);
    _tile_dpbf16ps(1, 3, 5);
    _tile_dpbf16ps(2, 3, 6);
  }
  _tile_stored(0, acc, acc_bytes);
  _tile_stored(1, acc + 16, acc_bytes);
  _tile_stored(2, acc + 32, acc_bytes);
  if (!in_place) {
    for (int r = 0; r < kRows; ++r) std::memcpy(c + r * c_stride, staged + r * kPanelCols, kPanelBytes);
  }
}

template <int... kRows>
constexpr auto make_amx_tiles(std::integer_sequence<int, kRows...>) {
  return std::array<TileKernel, sizeof...(kRows)>{&amx_bf16_tile<kRows + 1>...};
}

// Linux hands out AMX's 8 KiB of tile state only to processes that ask for it.
bool amx_permitted() {
  constexpr long kArchRequestXcompPermission = 0x1023;  // ARCH_REQ_XCOMP_PERM
  constexpr long kXfeatureTileData = 18;                // XFEATURE_XTILEDATA
  return syscall(SYS_arch_prctl, kArchRequestXcompPermission, kXfeatureTileData) == 0;
}
#endif

// The portable kernel: each pair widened to two f32 values (bf16 is the top half of an f32), then two FMAs, odd
// element first (vdpbf16ps's documented order). The panel's columns go in groups of three vectors.
template <int kRows>
void portable_tile(const void* x_data, int64_t x_stride, const void* weights, int64_t pairs, const float* init,
                   float* c, int64_t c_stride, TilePrefetch prefetch) {
  prefetch.all();
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
  static constexpr auto kAmx = make_amx_tiles(std::make_integer_sequence<int, kAmxTileRows>{});
  if (path == LinearBf16Path::amx_bf16) return {kAmx.data(), kAmxTileRows};
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
  static constexpr int64_t kMaxTileRows = std::max({kAmxTileRows, kAvx512TileRows, kPortableTileRows});
  static constexpr int64_t kDepthBlock = kDepthPairs;
  static constexpr int64_t kTaskRows = cpu::kTaskRows;
  static constexpr int64_t kMaxTaskPanels = cpu::kMaxTaskPanels;
  static constexpr bool kXInPlace = false;
  static constexpr bool kXBlockConverts = true;
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

bool amx_bf16_available() {
#if defined(__x86_64__)
  static const bool available = [] {
    // cpuid leaf 7 directly: clang 14's __builtin_cpu_supports does not know the AMX feature names.
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
    const bool amx_bf16 = (edx >> 22) & 1u;
    const bool amx_tile = (edx >> 24) & 1u;
    return amx_tile && amx_bf16 && amx_permitted();
  }();
  return available;
#else
  return false;
#endif
}

namespace {

bool avx512_bf16_available() {
#if defined(__x86_64__)
  static const bool available = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
  }();
  return available;
#else
  return false;
#endif
}

LinearBf16Path vector_path() {
  return avx512_bf16_available() ? LinearBf16Path::avx512_bf16 : LinearBf16Path::portable;
}

// The AMX kernel was written on machines without AMX: before the first use it must agree with the vector path
// on a problem with every edge (rows short of a tile, a partial depth step, several depth blocks) within the
// accumulation bound, or the vector path runs (and linear_bf16_path_name says why).
bool amx_agrees_with_vector_path() {
  constexpr int64_t kRows = 21;
  constexpr int64_t kIn = 2 * 150 + 1;
  constexpr int64_t kOut = kPanelCols + 5;
  std::vector<float> x(kRows * kIn);
  std::vector<float> weight(kOut * kIn);
  std::vector<float> bias(kOut);
  uint32_t state = 12345;
  const auto next = [&] {
    state = state * 1664525u + 1013904223u;
    return static_cast<float>(state >> 8) / 8388608.0f - 1.0f;  // in [-1, 1)
  };
  for (float& v : x) v = next();
  for (float& v : weight) v = next();
  for (float& v : bias) v = next();
  std::vector<uint32_t> buffer(static_cast<size_t>(packed_linear_bf16_pairs(kOut, kIn)) + 16);
  uint32_t* packed = buffer.data();
  while (reinterpret_cast<uintptr_t>(packed) % 64 != 0) ++packed;
  pack_linear_weight_bf16(weight.data(), kOut, kIn, packed);
  std::vector<float> amx(kRows * kOut);
  std::vector<float> vector(kRows * kOut);
  const ConstMatrixView x_view{x.data(), kRows, kIn, kIn};
  linear_packed_bf16(x_view, packed, kOut, bias.data(), MatrixView{amx.data(), kRows, kOut, kOut},
                     LinearBf16Path::amx_bf16);
  linear_packed_bf16(x_view, packed, kOut, bias.data(), MatrixView{vector.data(), kRows, kOut, kOut}, vector_path());
  for (size_t i = 0; i < amx.size(); ++i) {
    // |sum| <= kIn products of magnitude <= 1 plus the bias: (kIn + 2) f32 roundings of each path.
    if (!(std::fabs(amx[i] - vector[i]) <= 2.0f * (kIn + 2) * kIn * 1.2e-7f)) return false;
  }
  return true;
}

bool amx_checked() {
  static const bool passed = amx_bf16_available() && amx_agrees_with_vector_path();
  return passed;
}

}  // namespace

LinearBf16Path best_linear_bf16_path() {
  return amx_checked() ? LinearBf16Path::amx_bf16 : vector_path();
}

const char* linear_bf16_path_name(LinearBf16Path path) {
  switch (path) {
    case LinearBf16Path::amx_bf16: return "amx-bf16 (own AMX tiles)";
    case LinearBf16Path::avx512_bf16:
      return amx_bf16_available() && !amx_checked() ? "avx512-bf16 (AMX present but its self-check failed)"
                                                     : "avx512-bf16";
    case LinearBf16Path::portable: return "portable-bf16 (widened to f32 FMA)";
  }
  return "unknown";
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

void unpack_linear_row_bf16(const uint32_t* packed, int64_t in_features, int64_t row, float* values) {
  const uint32_t* panel = packed + (row / kPanelCols) * ceil_div(in_features, 2) * kPanelCols + row % kPanelCols;
  for (int64_t i = 0; i < in_features; ++i) {
    const uint32_t pair = panel[(i / 2) * kPanelCols];
    values[i] = std::bit_cast<float>(i % 2 == 0 ? pair << 16 : pair & 0xffff0000u);
  }
}

void unpack_linear_weight_bf16(const uint32_t* packed, int64_t out_features, int64_t in_features, float* weight) {
  for (int64_t o = 0; o < out_features; ++o) unpack_linear_row_bf16(packed, in_features, o, weight + o * in_features);
}

void linear_packed_bf16(ConstMatrixView x, const uint32_t* packed, int64_t out_features, const float* bias,
                        MatrixView out, LinearBf16Path path) {
  // Never run an instruction the CPU lacks.
  if (path == LinearBf16Path::amx_bf16 && !amx_bf16_available()) path = vector_path();
  if (path == LinearBf16Path::avx512_bf16 && !avx512_bf16_available()) path = LinearBf16Path::portable;
  const Bf16Weights weights{packed, ceil_div(x.cols, 2), tile_set(path)};
  LinearDriver<Bf16Weights>::run(weights, x, out_features, bias, out);
}

}  // namespace jagged::kernels::cpu
