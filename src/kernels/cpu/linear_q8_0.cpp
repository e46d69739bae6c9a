// The Q8_0-weight GEMM: llama.cpp's Q8_0 blocks (32 int8 values q and one f16 scale d per block of a row),
// repacked into 48-wide column panels, dequantized in registers (w = d * q, exact in f32: an 11-bit by 8-bit
// product) and multiplied with f32 FMAs in the f32 kernel's order. So activations stay f32 (no int8 rounding of
// x), and the result is bit for bit the f32 kernel's on the dequantized weight (same tile, depth blocks, FMA
// chain). The weight is read at 34 bytes per 32 values, a quarter of f32's, which is what decode is bound by.
#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <utility>

#include <hwy/highway.h>

#include "core/threads.h"
#include "kernels/cpu/linear_driver.h"
#include "kernels/cpu/linear_tasks.h"
#include "kernels/linear.h"

namespace jagged::kernels::cpu {

namespace {

namespace hn = hwy::HWY_NAMESPACE;
using FloatTag = hn::ScalableTag<float>;
using FloatVec = hn::Vec<FloatTag>;

constexpr int64_t kPanelCols = kLinearQ8PanelCols;  // 48
constexpr int64_t kBlock = kQ8Block;                // 32 values per scale
constexpr int64_t kScaleBytes = kPanelCols * 2;     // 48 f16
constexpr int64_t kBlockBytes = kLinearQ8PanelBlockBytes;
constexpr int64_t kLanes = static_cast<int64_t>(HWY_MAX_BYTES / sizeof(float));
constexpr int kVectors = static_cast<int>(kPanelCols / kLanes);
constexpr int kTileRows = kLanes >= 16 ? 8 : 2;
constexpr int64_t kDepthBlock = 128;  // as the f32 kernel: partial sums stored at the same boundaries
constexpr int64_t kTaskRows = 128;
constexpr int64_t kMaxTaskPanels = 4;
static_assert(kPanelCols % kLanes == 0 && kDepthBlock % kBlock == 0);

// acc = init or the tile of c; acc += x[r, k] * (d * q)[k, :] for k < depth, blocks from `blocks` (the depth
// block's first); c = acc.
template <int kRows>
void q8_tile(const void* x_data, int64_t x_stride, const void* weights, int64_t depth, const float* init, float* c,
             int64_t c_stride) {
  const FloatTag df;
  const auto* x = static_cast<const float*>(x_data);
  const auto* blocks = static_cast<const uint8_t*>(weights);
  const hn::Rebind<int32_t, FloatTag> d32;
  const hn::Rebind<int8_t, FloatTag> d8;
  const hn::Rebind<hwy::float16_t, FloatTag> dh;
  FloatVec acc[kRows][kVectors];
  for (int r = 0; r < kRows; ++r) {
    for (int v = 0; v < kVectors; ++v) {
      acc[r][v] = hn::LoadU(df, (init != nullptr ? init : c + r * c_stride) + v * kLanes);
    }
  }
  for (int64_t block_begin = 0; block_begin < depth; block_begin += kBlock) {
    const uint8_t* block = blocks + block_begin / kBlock * kBlockBytes;
    FloatVec scale[kVectors];
    for (int v = 0; v < kVectors; ++v) {
      scale[v] = hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(block) + v * kLanes));
    }
    const int8_t* quants = reinterpret_cast<const int8_t*>(block + kScaleBytes);
    const int64_t block_end = std::min(kBlock, depth - block_begin);
    for (int64_t k = 0; k < block_end; ++k) {
      FloatVec weights[kVectors];
      for (int v = 0; v < kVectors; ++v) {
        const auto q = hn::PromoteTo(d32, hn::LoadU(d8, quants + k * kPanelCols + v * kLanes));
        weights[v] = hn::Mul(hn::ConvertTo(df, q), scale[v]);
      }
      for (int r = 0; r < kRows; ++r) {
        const FloatVec broadcast = hn::Set(df, x[r * x_stride + block_begin + k]);
        for (int v = 0; v < kVectors; ++v) acc[r][v] = hn::MulAdd(broadcast, weights[v], acc[r][v]);
      }
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int v = 0; v < kVectors; ++v) hn::StoreU(acc[r][v], df, c + r * c_stride + v * kLanes);
  }
}

template <int... kRows>
constexpr auto make_tiles(std::integer_sequence<int, kRows...>) {
  return std::array<LinearTileKernel, sizeof...(kRows)>{&q8_tile<kRows + 1>...};
}
constexpr auto kTiles = make_tiles(std::make_integer_sequence<int, kTileRows>{});

// The packed blocks, read in place (dequantized in the tile kernel's registers).
struct Q8Weights : LinearInPlaceFormat<kPanelCols, kTileRows, kDepthBlock, kTaskRows, kMaxTaskPanels> {
  const uint8_t* packed;
  int64_t in_blocks;
  static LinearTileKernel tile(int rows) { return kTiles[static_cast<size_t>(rows - 1)]; }
  const void* block(int64_t panel, int64_t depth_begin) const {
    return packed + (panel * in_blocks + depth_begin / kBlock) * kBlockBytes;
  }
  const void* next_block(int64_t panel, int64_t depth_begin) const { return block(panel, depth_begin); }
  int64_t block_bytes(int64_t depth) const { return ceil_div(depth, kBlock) * kBlockBytes; }
};

}  // namespace

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
        for (int64_t k = 0; k < kBlock; ++k) {
          reinterpret_cast<int8_t*>(block + kScaleBytes)[k * kPanelCols + j] = quants[k];
        }
      }
    }
  }
}

void unpack_linear_weight_q8_0(const uint8_t* packed, int64_t out_features, int64_t in_features, float* weight) {
  const int64_t in_blocks = ceil_div(in_features, kBlock);
  for (int64_t o = 0; o < out_features; ++o) {
    const int64_t panel = o / kPanelCols;
    const int64_t j = o % kPanelCols;
    for (int64_t i = 0; i < in_features; ++i) {
      const uint8_t* block = packed + (panel * in_blocks + i / kBlock) * kBlockBytes;
      uint16_t scale = 0;
      std::memcpy(&scale, block + j * 2, 2);
      const int8_t q = reinterpret_cast<const int8_t*>(block + kScaleBytes)[(i % kBlock) * kPanelCols + j];
      weight[o * in_features + i] = f16_to_f32(scale) * static_cast<float>(q);
    }
  }
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
      for (int64_t k = 0; k < kBlock; ++k) block[kScaleBytes + k * kPanelCols + j] = source[2 + k];
    }
  }
}

void linear_packed_q8_0(ConstMatrixView x, const uint8_t* packed, int64_t out_features, const float* bias,
                        MatrixView out) {
  LinearDriver<Q8Weights>::run(Q8Weights{{}, packed, ceil_div(x.cols, kBlock)}, x, out_features, bias, out);
}

}  // namespace jagged::kernels::cpu
