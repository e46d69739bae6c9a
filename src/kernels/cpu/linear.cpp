#include "kernels/linear.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "core/threads.h"
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
// c = acc. x rows are x_stride apart (read in place: kRows sequential streams), c rows c_stride apart.
template <int kRows>
void tile_kernel(const float* x, int64_t x_stride, const float* panel, int64_t depth, const float* init, float* c,
                 int64_t c_stride) {
  const FloatTag d;
  FloatVec acc[kRows][kPanelVectors];
  for (int r = 0; r < kRows; ++r) {
    for (int v = 0; v < kPanelVectors; ++v) {
      acc[r][v] = init != nullptr ? hn::LoadU(d, init + v * kLanes) : hn::LoadU(d, c + r * c_stride + v * kLanes);
    }
  }
  for (int64_t k = 0; k < depth; ++k) {
    const float* w = panel + k * kPanelCols;
    FloatVec weights[kPanelVectors];
    for (int v = 0; v < kPanelVectors; ++v) weights[v] = hn::Load(d, w + v * kLanes);
    for (int r = 0; r < kRows; ++r) {
      const FloatVec broadcast = hn::Set(d, x[r * x_stride + k]);
      for (int v = 0; v < kPanelVectors; ++v) acc[r][v] = hn::MulAdd(broadcast, weights[v], acc[r][v]);
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int v = 0; v < kPanelVectors; ++v) hn::StoreU(acc[r][v], d, c + r * c_stride + v * kLanes);
  }
}

using TileKernel = void (*)(const float*, int64_t, const float*, int64_t, const float*, float*, int64_t);

template <int... kRows>
constexpr auto make_tile_kernels(std::integer_sequence<int, kRows...>) {
  return std::array<TileKernel, sizeof...(kRows)>{&tile_kernel<kRows + 1>...};
}
// kTileKernels[n - 1] computes n rows: the same per-element arithmetic for any n.
constexpr auto kTileKernels = make_tile_kernels(std::make_integer_sequence<int, kTileRows>{});

struct LinearProblem {
  ConstMatrixView x;
  const float* packed;
  int64_t out_features;
  const float* bias;
  MatrixView out;
};

// One panel of one depth block over rows [row_begin, row_end): full register tiles, then the remainder.
// next_weights: the weight block the task runs next (depth_next floats x kPanelCols), or nullptr. prefetch_x:
// whether this is the first pass over the x block (later panels find it in L2).
void run_panel(const LinearProblem& p, int64_t panel, int64_t depth_begin, int64_t depth, int64_t row_begin,
               int64_t row_end, const float* next_weights, int64_t depth_next, bool prefetch_x) {
  const int64_t in_features = p.x.cols;
  const int64_t col_begin = panel * kPanelCols;
  const int64_t cols = std::min(kPanelCols, p.out_features - col_begin);
  const float* weights = p.packed + panel * in_features * kPanelCols + depth_begin * kPanelCols;
  const bool first = depth_begin == 0;
  // The first depth block starts from the bias (zero-padded to the panel's width).
  HWY_ALIGN float init[kPanelCols] = {};
  if (first && p.bias != nullptr) std::memcpy(init, p.bias + col_begin, static_cast<size_t>(cols) * sizeof(float));
  const float* init_row = first ? init : nullptr;
  for (int64_t r = row_begin; r < row_end; r += kTileRows) {
    const int64_t rows = std::min<int64_t>(kTileRows, row_end - r);
    const TileKernel kernel = kTileKernels[static_cast<size_t>(rows - 1)];
    const float* x = p.x.row(r) + depth_begin;
    float* c = p.out.row(r) + col_begin;
    // The next tile's rows are short streams (depth floats each) that the hardware prefetcher does not pick up
    // in time: ask for them while this tile computes.
    for (int64_t i = r + kTileRows; prefetch_x && i < std::min(row_end, r + 2 * kTileRows); ++i) {
      const char* next = reinterpret_cast<const char*>(p.x.row(i) + depth_begin);
      for (int64_t byte = 0; byte < depth * static_cast<int64_t>(sizeof(float)); byte += 64) {
        __builtin_prefetch(next + byte);
      }
    }
    // The next weight block likewise (from L3 when the task's weights outgrow L2), a share per tile.
    if (next_weights != nullptr) {
      const int64_t block_bytes = depth_next * kPanelCols * static_cast<int64_t>(sizeof(float));
      const int64_t tiles = ceil_div(row_end - row_begin, kTileRows);
      const int64_t share = round_up(ceil_div(block_bytes, tiles), 64);
      const char* next = reinterpret_cast<const char*>(next_weights);
      const int64_t begin = (r - row_begin) / kTileRows * share;
      for (int64_t byte = begin; byte < std::min(block_bytes, begin + share); byte += 64) {
        __builtin_prefetch(next + byte);
      }
    }
    if (cols == kPanelCols) {
      kernel(x, p.x.row_stride, weights, depth, init_row, c, p.out.row_stride);
      continue;
    }
    // The last, narrower panel: the same kernel on a full-width copy of the tile.
    HWY_ALIGN float edge[kTileRows * kPanelCols] = {};
    const size_t bytes = static_cast<size_t>(cols) * sizeof(float);
    if (!first) {
      for (int64_t i = 0; i < rows; ++i) std::memcpy(edge + i * kPanelCols, p.out.row(r + i) + col_begin, bytes);
    }
    kernel(x, p.x.row_stride, weights, depth, init_row, edge, kPanelCols);
    for (int64_t i = 0; i < rows; ++i) std::memcpy(p.out.row(r + i) + col_begin, edge + i * kPanelCols, bytes);
  }
}

void run_task(const LinearProblem& p, const TaskGrid& grid, int64_t task) {
  const int64_t row_begin = (task % grid.row_tasks) * kTaskRows;
  const int64_t row_end = std::min(p.x.rows, row_begin + kTaskRows);
  const int64_t panels = ceil_div(p.out_features, kPanelCols);
  const int64_t panel_begin = (task / grid.row_tasks) * grid.panels_per_task;
  const int64_t panel_end = std::min(panels, panel_begin + grid.panels_per_task);
  const int64_t in_features = p.x.cols;
  const auto depth_of = [&](int64_t depth_begin) { return std::min(kDepthBlock, in_features - depth_begin); };
  for (int64_t depth_begin = 0; depth_begin < in_features; depth_begin += kDepthBlock) {
    for (int64_t panel = panel_begin; panel < panel_end; ++panel) {
      // The block after this one: the next panel at this depth, else the first panel at the next depth.
      int64_t next_panel = panel + 1;
      int64_t next_depth = depth_begin;
      if (next_panel == panel_end) {
        next_panel = panel_begin;
        next_depth += kDepthBlock;
      }
      const float* next_weights = next_depth < in_features
                                      ? p.packed + (next_panel * in_features + next_depth) * kPanelCols
                                      : nullptr;
      run_panel(p, panel, depth_begin, depth_of(depth_begin), row_begin, row_end, next_weights,
                next_depth < in_features ? depth_of(next_depth) : 0, panel == panel_begin);
    }
  }
}

}  // namespace

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

void unpack_linear_weight(const float* packed, int64_t out_features, int64_t in_features, float* weight) {
  for (int64_t o = 0; o < out_features; ++o) {
    const float* panel = packed + (o / kPanelCols) * in_features * kPanelCols + o % kPanelCols;
    for (int64_t k = 0; k < in_features; ++k) weight[o * in_features + k] = panel[k * kPanelCols];
  }
}

void linear_packed(ConstMatrixView x, const float* packed, int64_t out_features, const float* bias, MatrixView out) {
  const int64_t rows = x.rows;
  if (rows == 0 || out_features == 0) return;
  if (x.cols == 0) {  // an empty sum: out = bias
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t o = 0; o < out_features; ++o) out.row(r)[o] = bias != nullptr ? bias[o] : 0.0f;
    }
    return;
  }
  const LinearProblem problem{x, packed, out_features, bias, out};
  const int threads = std::max(1, num_threads());
  const TaskGrid grid = task_grid(rows, out_features, kPanelCols, kTaskRows, kMaxTaskPanels, threads);
  if (grid.tasks == 1 || threads == 1) {
    for (int64_t task = 0; task < grid.tasks; ++task) run_task(problem, grid, task);
    return;
  }
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t task = 0; task < grid.tasks; ++task) run_task(problem, grid, task);
}

}  // namespace jagged::kernels::cpu
