#include "kernels/linear.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <utility>

#include "core/threads.h"
#include "kernels/cpu/linear_driver.h"
#include "kernels/cpu/linear_tasks.h"
#include "kernels/cpu/vector_math.h"

namespace jagged::kernels::cpu {

namespace {

namespace hn = hwy::HWY_NAMESPACE;
using vec::FloatTag;
using vec::FloatVec;

// Register tile: kTileRows rows of x times one panel of kPanelVectors vectors of output features. With 32
// vector registers (AVX-512): 8 x 3 accumulators + 3 weight vectors + 1 broadcast; with 16 (AVX2): 4 x 3.
constexpr int64_t kLanes = static_cast<int64_t>(vec::kMaxFloatLanes);  // static target: Lanes(d) == MaxLanes
constexpr int kPanelVectors = 3;
constexpr int64_t kPanelCols = kPanelVectors * kLanes;
constexpr int kTileRows = kLanes >= 16 ? 8 : 4;
// Cache blocking (measured on this machine with bench/ops_bench BM_LinearVsSgemm). A task is kTaskRows rows x
// up to kMaxTaskPanels panels; within it, depth blocks of kDepthBlock keep one panel's weights (128 x 48 floats,
// 24 KiB) in L1 across the task's row tiles, and the task's weights (96 KiB) and x block (64 KiB) in L2.
// kDepthBlock is part of the arithmetic (partial sums are stored at its boundaries), so it is a constant, never
// chosen per call.
constexpr int64_t kDepthBlock = 128;
constexpr int64_t kTaskRows = 128;
constexpr int64_t kMaxTaskPanels = 4;


// acc = init (a panel row of kPanelCols floats) or the tile of c; acc += x[r, k] * panel[k, :] for k < depth;
// c = acc. x rows are x_stride apart (read in place: kRows sequential streams), c rows c_stride apart;
// prefetch spread over the depth loop.
template <int kRows>
void tile_kernel(const void* x_data, int64_t x_stride, const void* weights, int64_t depth, const float* init,
                 float* c, int64_t c_stride, TilePrefetch prefetch) {
  const FloatTag d;
  const auto* x = static_cast<const float*>(x_data);
  const auto* panel = static_cast<const float*>(weights);
  FloatVec acc[kRows][kPanelVectors];
  for (int r = 0; r < kRows; ++r) {
    for (int v = 0; v < kPanelVectors; ++v) {
      acc[r][v] = init != nullptr ? hn::LoadU(d, init + v * kLanes) : hn::LoadU(d, c + r * c_stride + v * kLanes);
    }
  }
  const TilePrefetch spread = prefetch.over(depth);
  for (int64_t k = 0; k < depth; ++k) {
    spread.step(k);
    const float* w = panel + k * kPanelCols;
    FloatVec weights_k[kPanelVectors];
    for (int v = 0; v < kPanelVectors; ++v) weights_k[v] = hn::Load(d, w + v * kLanes);
    for (int r = 0; r < kRows; ++r) {
      const FloatVec broadcast = hn::Set(d, x[r * x_stride + k]);
      for (int v = 0; v < kPanelVectors; ++v) acc[r][v] = hn::MulAdd(broadcast, weights_k[v], acc[r][v]);
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int v = 0; v < kPanelVectors; ++v) hn::StoreU(acc[r][v], d, c + r * c_stride + v * kLanes);
  }
}

template <int... kRows>
constexpr auto make_tile_kernels(std::integer_sequence<int, kRows...>) {
  return std::array<LinearTileKernel, sizeof...(kRows)>{&tile_kernel<kRows + 1>...};
}
// kTileKernels[n - 1] computes n rows: the same per-element arithmetic for any n.
constexpr auto kTileKernels = make_tile_kernels(std::make_integer_sequence<int, kTileRows>{});

// f32 panels, read in place.
struct F32Weights : LinearInPlaceFormat<kPanelCols, kTileRows, kDepthBlock, kTaskRows, kMaxTaskPanels> {
  const float* packed;
  int64_t in_features;
  static LinearTileKernel tile(int rows) { return kTileKernels[static_cast<size_t>(rows - 1)]; }
  const void* block(int64_t panel, int64_t depth_begin) const {
    return packed + (panel * in_features + depth_begin) * kPanelCols;
  }
  const void* next_block(int64_t panel, int64_t depth_begin) const { return block(panel, depth_begin); }
  int64_t block_bytes(int64_t depth) const { return depth * kPanelCols * static_cast<int64_t>(sizeof(float)); }
};

std::atomic<LinearDecodeOrder> decode_order{LinearDecodeOrder::streamed};

}  // namespace

void set_linear_decode_order(LinearDecodeOrder order) { decode_order.store(order, std::memory_order_relaxed); }

LinearDecodeOrder linear_decode_order() { return decode_order.load(std::memory_order_relaxed); }

int64_t packed_linear_floats(int64_t out_features, int64_t in_features) {
  return ceil_div(out_features, kPanelCols) * kPanelCols * in_features;
}

void pack_linear_weight(const float* weight, int64_t out_features, int64_t in_features, float* packed) {
  const int64_t panels = ceil_div(out_features, kPanelCols);
#pragma omp parallel for schedule(static) if (panels > 1 && num_threads() > 1)
  for (int64_t panel = 0; panel < panels; ++panel) {
    float* target = packed + panel * in_features * kPanelCols;
    for (int64_t j = 0; j < kPanelCols; ++j) {
      const int64_t o = panel * kPanelCols + j;
      for (int64_t k = 0; k < in_features; ++k) {
        target[k * kPanelCols + j] = o < out_features ? weight[o * in_features + k] : 0.0f;
      }
    }
  }
}

void unpack_linear_row(const float* packed, int64_t in_features, int64_t row, float* values) {
  const float* panel = packed + (row / kPanelCols) * in_features * kPanelCols + row % kPanelCols;
  for (int64_t k = 0; k < in_features; ++k) values[k] = panel[k * kPanelCols];
}

void linear_packed(ConstMatrixView x, const float* packed, int64_t out_features, const float* bias, MatrixView out) {
  LinearDriver<F32Weights>::run(F32Weights{{}, packed, x.cols}, x, out_features, bias, out);
}

}  // namespace jagged::kernels::cpu
