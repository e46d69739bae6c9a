// The task loop shared by the packed-weight GEMMs (f32, bf16, Q8_0 and the other GGUF block types): tasks of
// kTaskRows rows x a group of panels (linear_tasks.h), within a task each (panel, depth block of kDepthBlock) in
// the order panel_major picks, each over the task's rows in register tiles. A weight format supplies, as a
// policy class `Weights`:
//   kPanelCols, kMaxTileRows, kDepthBlock, kTaskRows, kMaxTaskPanels   the blocking (constants)
//   kXInPlace                                           x is read in place as f32 (else x_block gives it)
//   kXBlockConverts                                     x_block converts x (bf16: into the thread's buffer,
//                                                       valid until its next call) rather than pointing into
//                                                       x rounded once per call (int8)
//   int64_t depth(in_features) const                    the depth in the kernel's units (bf16: pairs)
//   const uint32_t* x_block(x, row_begin, row_end, depth_begin, depth) const
//                                                       kXInPlace false: the task's rows of this depth block
//                                                       converted, rows x_block_stride() 4-byte units apart
//   int64_t x_block_stride() const                      (kXInPlace false) that row stride
//   const void* block(panel, depth_begin) const          one panel's weights of one depth block as its tile
//                                                       kernel reads them
//   const void* next_block(panel, depth_begin) const     one to prefetch ahead (nullptr: none)
//   int64_t block_bytes(depth) const                     its size, for the prefetch
//   int tile_rows() const; LinearTileKernel tile(rows) const   acc = init or c; acc += x * w over depth; c = acc;
//                                                       the next block's share asked for (TilePrefetch)
// Batch invariance: the depth blocks, their order and each element's chain of operations are fixed by the
// constants (and the CPU path); the number of rows, the thread count and the task split change which thread
// computes an element and which rows share its register tile, never its arithmetic.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "core/threads.h"
#include "jagged/tensor.h"
#include "kernels/cpu/linear_tasks.h"
#include "kernels/linear.h"

namespace jagged::kernels::cpu {

// Cache lines of a coming weight block that a tile kernel asks for while it computes. Spread over the kernel's
// depth loop (step), they overlap the memory system's work with the FMAs; issued at once (all), hundreds of
// prefetches fill the core's miss buffers and stall it until they drain (measured: 15% of a 32-row decode GEMM).
struct TilePrefetch {
  const char* begin = nullptr;
  int64_t lines = 0;
  int64_t per_step = 0;

  // The same lines, ceil(lines / steps) a step.
  TilePrefetch over(int64_t steps) const { return {begin, lines, steps > 0 ? (lines + steps - 1) / steps : lines}; }
  void step(int64_t k) const {
    for (int64_t i = k * per_step, end = std::min(lines, i + per_step); i < end; ++i) __builtin_prefetch(begin + i * 64);
  }
  void all() const {
    for (int64_t i = 0; i < lines; ++i) __builtin_prefetch(begin + i * 64);
  }
};

// acc = init (a panel row of kPanelCols floats) or the tile of c; acc += x[r, k] * w[k, :] for k < depth;
// c = acc; prefetch asked for on the way. x: f32, or the format's converted units (bf16 pairs); rows x_stride
// units apart, c rows c_stride.
using LinearTileKernel = void (*)(const void* x, int64_t x_stride, const void* weights, int64_t depth,
                                  const float* init, float* c, int64_t c_stride, TilePrefetch prefetch);

// The blocking of a format, and x read in place as f32 (all formats but bf16).
template <int64_t PanelCols, int TileRows, int64_t DepthBlock, int64_t TaskRows, int64_t MaxTaskPanels>
struct LinearInPlaceFormat {
  static constexpr int64_t kPanelCols = PanelCols;
  static constexpr int64_t kMaxTileRows = TileRows;
  static constexpr int64_t kDepthBlock = DepthBlock;
  static constexpr int64_t kTaskRows = TaskRows;
  static constexpr int64_t kMaxTaskPanels = MaxTaskPanels;
  static constexpr bool kXInPlace = true;
  static constexpr bool kXBlockConverts = false;
  static int tile_rows() { return TileRows; }
  static int64_t depth(int64_t in_features) { return in_features; }
  static const uint32_t* x_block(ConstMatrixView, int64_t, int64_t, int64_t, int64_t) { return nullptr; }
  static int64_t x_block_stride() { return 0; }
};

template <class Weights>
class LinearDriver {
 public:
  static constexpr int64_t kPanelCols = Weights::kPanelCols;
  static constexpr int64_t kMaxTileRows = Weights::kMaxTileRows;
  static constexpr int64_t kDepthBlock = Weights::kDepthBlock;
  static constexpr int64_t kTaskRows = Weights::kTaskRows;
  // The order of a task's steps (panel, depth block). Where every row fits one task (decode batches, up to
  // kTaskRows rows): panel by panel, each panel's depth blocks in order. A panel's blocks lie one after the other
  // and the task's panels too, so the task reads its weights as one sequential stream, while its rows' x stays in
  // L2; and the call is cut into 1 to 4 tasks a thread of at least kMinTaskBytes each, for every task start costs
  // a cold block and a scheduling round. Measured on the EPYC with a decode step's projections, the two orders
  // alternated call by call in one process (bench/ops_bench BM_LinearDecodeOrder): f32 1-8%, Q8_0 10-19%, Q4_0
  // 14-35%, bf16 8-13% faster at 1 to 128 rows (bf16 keeps each depth block's converted x for the task's later
  // panels; converting it again per panel ate the gain). Otherwise (prefill): depth block by depth block, every
  // panel of the task on the x block while it is in L1, tasks of at most kMaxTaskPanels panels taken
  // dynamically. Either way an element sees its depth blocks in order: the order changes which weights are read
  // when, never an element's arithmetic.
  static bool panel_major(int64_t rows) {
    return rows <= kTaskRows && linear_decode_order() == LinearDecodeOrder::streamed;
  }
  static constexpr int64_t kMinTaskBytes = int64_t{1} << 20;

  // The split of a panel-major call: the panels in 1 to 4 tasks a thread, by the weight's bytes.
  static TaskGrid decode_grid(const Weights& weights, int64_t in_features, int64_t out_features, int threads) {
    const int64_t in_depth = weights.depth(in_features);
    int64_t panel_bytes = 0;
    for (int64_t depth = 0; depth < in_depth; depth += kDepthBlock) {
      panel_bytes += weights.block_bytes(std::min(kDepthBlock, in_depth - depth));
    }
    const int64_t panels = ceil_div(out_features, kPanelCols);
    const int64_t tasks_per_thread = std::clamp<int64_t>(panels * panel_bytes / (kMinTaskBytes * threads), 1, 4);
    return task_grid(1, out_features, kPanelCols, kTaskRows, panels, threads, tasks_per_thread);
  }

  // out = x * w^T + bias. out_features: of the weight; x.cols its in_features.
  static void run(const Weights& weights, ConstMatrixView x, int64_t out_features, const float* bias,
                  MatrixView out) {
    const int64_t rows = x.rows;
    if (rows == 0 || out_features == 0) return;
    if (x.cols == 0) {  // an empty sum: out = bias
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t o = 0; o < out_features; ++o) out.row(r)[o] = bias != nullptr ? bias[o] : 0.0f;
      }
      return;
    }
    const LinearDriver driver{weights, x, out_features, bias, out, panel_major(rows)};
    const int threads = std::max(1, num_threads());
    const TaskGrid grid = driver.panel_major_
                              ? decode_grid(weights, x.cols, out_features, threads)
                              : task_grid(rows, out_features, kPanelCols, kTaskRows, Weights::kMaxTaskPanels, threads);
    if (grid.tasks == 1 || threads == 1) {
      for (int64_t task = 0; task < grid.tasks; ++task) driver.run_task(grid, task);
      return;
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t task = 0; task < grid.tasks; ++task) driver.run_task(grid, task);
  }

 private:
  LinearDriver(const Weights& weights, ConstMatrixView x, int64_t out_features, const float* bias, MatrixView out,
               bool panel_major)
      : weights_(weights), x_(x), out_features_(out_features), bias_(bias), out_(out), panel_major_(panel_major) {}

  void run_task(const TaskGrid& grid, int64_t task) const {
    const int64_t row_begin = (task % grid.row_tasks) * kTaskRows;
    const int64_t row_end = std::min(x_.rows, row_begin + kTaskRows);
    const int64_t panels = ceil_div(out_features_, kPanelCols);
    const int64_t panel_begin = (task / grid.row_tasks) * grid.panels_per_task;
    const int64_t panel_end = std::min(panels, panel_begin + grid.panels_per_task);
    const int64_t in_depth = weights_.depth(x_.cols);
    const auto depth_of = [&](int64_t depth_begin) { return std::min(kDepthBlock, in_depth - depth_begin); };
    const int64_t task_panels = panel_end - panel_begin;
    const int64_t depth_blocks = ceil_div(in_depth, kDepthBlock);
    // Step s of the task: (panel, depth_begin).
    const auto step_at = [&](int64_t s) {
      return panel_major_ ? std::pair{panel_begin + s / depth_blocks, s % depth_blocks * kDepthBlock}
                         : std::pair{panel_begin + s % task_panels, s / task_panels * kDepthBlock};
    };
    const int64_t steps = task_panels * depth_blocks;
    // Streamed order, a format whose x_block converts: each depth block's x converted once, on the task's first
    // panel, and kept for its later panels ([depth_blocks][rows, x_block_stride()], the calling thread's).
    const int64_t x_block_units = Weights::kXInPlace ? 0 : (row_end - row_begin) * weights_.x_block_stride();
    uint32_t* converted_x = nullptr;
    if (panel_major_ && Weights::kXBlockConverts) {
      static thread_local std::vector<uint32_t> buffer;
      buffer.resize(std::max(buffer.size(), static_cast<size_t>(depth_blocks * x_block_units)));
      converted_x = buffer.data();
    }
    const uint32_t* x_block = nullptr;
    for (int64_t s = 0; s < steps; ++s) {
      const auto [panel, depth_begin] = step_at(s);
      const int64_t depth = depth_of(depth_begin);
      if (converted_x != nullptr) {
        uint32_t* kept = converted_x + depth_begin / kDepthBlock * x_block_units;
        if (panel == panel_begin) {
          std::memcpy(kept, weights_.x_block(x_, row_begin, row_end, depth_begin, depth),
                      static_cast<size_t>(x_block_units) * sizeof(uint32_t));
        }
        x_block = kept;
      } else if (!Weights::kXInPlace && (panel_major_ || panel == panel_begin)) {
        x_block = weights_.x_block(x_, row_begin, row_end, depth_begin, depth);
      }
      const void* next = nullptr;  // the block of the next step, asked for while this one computes
      int64_t next_bytes = 0;
      if (s + 1 < steps) {
        const auto [next_panel, next_depth] = step_at(s + 1);
        next = weights_.next_block(next_panel, next_depth);
        next_bytes = next != nullptr ? weights_.block_bytes(depth_of(next_depth)) : 0;
      }
      run_panel(panel, depth_begin, depth, weights_.block(panel, depth_begin), x_block, row_begin, row_end,
                static_cast<const char*>(next), next_bytes, panel == panel_begin);
    }
  }

  // One panel of one depth block over rows [row_begin, row_end): full register tiles, then the remainder.
  // x_block: the converted rows (not kXInPlace). prefetch_x: whether this is the first pass over the x block
  // (later panels find it in L2).
  void run_panel(int64_t panel, int64_t depth_begin, int64_t depth, const void* block, const uint32_t* x_block,
                 int64_t row_begin, int64_t row_end, const char* next, int64_t next_bytes, bool prefetch_x) const {
    const int64_t tile_rows = weights_.tile_rows();
    const int64_t col_begin = panel * kPanelCols;
    const int64_t cols = std::min(kPanelCols, out_features_ - col_begin);
    const bool first = depth_begin == 0;
    // The first depth block starts from the bias (zero-padded to the panel's width).
    alignas(64) float init[kPanelCols] = {};
    if (first && bias_ != nullptr) std::memcpy(init, bias_ + col_begin, static_cast<size_t>(cols) * sizeof(float));
    const float* init_row = first ? init : nullptr;
    const int64_t tiles = ceil_div(row_end - row_begin, tile_rows);
    for (int64_t r = row_begin; r < row_end; r += tile_rows) {
      const int64_t rows = std::min<int64_t>(tile_rows, row_end - r);
      const LinearTileKernel kernel = weights_.tile(static_cast<int>(rows));
      const int64_t x_stride = Weights::kXInPlace ? x_.row_stride : weights_.x_block_stride();
      const void* x = Weights::kXInPlace ? static_cast<const void*>(x_.row(r) + depth_begin)
                                         : static_cast<const void*>(x_block + (r - row_begin) * x_stride);
      float* c = out_.row(r) + col_begin;
      // The next tile's rows are short streams (depth floats each) that the hardware prefetcher does not pick
      // up in time: ask for them while this tile computes.
      for (int64_t i = r + tile_rows; Weights::kXInPlace && prefetch_x && i < std::min(row_end, r + 2 * tile_rows);
           ++i) {
        const char* row = reinterpret_cast<const char*>(x_.row(i) + depth_begin);
        for (int64_t byte = 0; byte < depth * static_cast<int64_t>(sizeof(float)); byte += 64) {
          __builtin_prefetch(row + byte);
        }
      }
      // The next weight block likewise (from L3 when the task's weights outgrow L2), a share per tile.
      TilePrefetch prefetch;
      if (next != nullptr) {
        const int64_t share = round_up(ceil_div(next_bytes, tiles), 64);
        const int64_t begin = (r - row_begin) / tile_rows * share;
        prefetch = {next + begin, ceil_div(std::max<int64_t>(0, std::min(next_bytes, begin + share) - begin), 64)};
      }
      if (cols == kPanelCols) {
        kernel(x, x_stride, block, depth, init_row, c, out_.row_stride, prefetch);
        continue;
      }
      // The last, narrower panel: the same kernel on a full-width copy of the tile.
      alignas(64) float edge[kMaxTileRows * kPanelCols] = {};
      const size_t bytes = static_cast<size_t>(cols) * sizeof(float);
      if (!first) {
        for (int64_t i = 0; i < rows; ++i) std::memcpy(edge + i * kPanelCols, out_.row(r + i) + col_begin, bytes);
      }
      kernel(x, x_stride, block, depth, init_row, edge, kPanelCols, prefetch);
      for (int64_t i = 0; i < rows; ++i) std::memcpy(out_.row(r + i) + col_begin, edge + i * kPanelCols, bytes);
    }
  }

  const Weights& weights_;
  ConstMatrixView x_;
  int64_t out_features_;
  const float* bias_;
  MatrixView out_;
  bool panel_major_;  // the call's order (see panel_major)
};

}  // namespace jagged::kernels::cpu
