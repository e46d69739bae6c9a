// Activations rounded to Q8_0 blocks for the int8 dot-product paths (AVX512-VNNI) of the quantized GEMMs (Q8_0 in
// linear_q8_0.cpp, the other block types in linear_blocks.cpp), as llama.cpp does for all its quantized types.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "jagged/tensor.h"
#include "kernels/cpu/linear_driver.h"
#include "kernels/cpu/linear_tasks.h"

namespace jagged::kernels::cpu {

// One row's block of 32 inputs, rounded: kInt8XBlockUnits 32-bit units: 8 units of 4 int8 quants qx (inputs 4u ..
// 4u + 3 in unit u), the scale dx (f32 bits of the f16-rounded value), -128 sum(qx) (the correction of a
// weight stored as q + 128; a weight stored as q + 8 takes a sixteenth of it), and the sum of qx over inputs
// 0..15 (Q6_K's first sub-block, with a scale of its own).
inline constexpr int64_t kInt8XBlockUnits = 11;

// Whether this CPU runs the int8 paths (cpuid: AVX512F, AVX512BW, AVX512-VNNI).
bool cpu_has_avx512_vnni();

// x [rows, in_features] -> [rows, ceil(in_features / 32) * kInt8XBlockUnits] units, every row rounded as
// llama.cpp's quantize_row_q8_0 for x86 (zero past in_features), rows in parallel. The buffer is the calling
// thread's, grown to the largest call and valid until its next call. Only where cpu_has_avx512_vnni().
const uint32_t* quantize_activations_q8_0(ConstMatrixView x);

// An int8 format for the task loop (linear_driver.h): per panel of PanelCols outputs, blocks of 32 inputs of
// BlockBytes each, read in place; x rounded once per call (quantize_activations_q8_0) and read where it lies.
// Tiles[n - 1] computes n rows.
template <int64_t PanelCols, int64_t BlockBytes, int64_t DepthBlock, int64_t TaskRows, int64_t MaxTaskPanels,
          size_t TileRows, const std::array<LinearTileKernel, TileRows>& Tiles>
struct Int8BlockWeights {
  static constexpr int64_t kPanelCols = PanelCols;
  static constexpr int64_t kMaxTileRows = static_cast<int64_t>(TileRows);
  static constexpr int64_t kDepthBlock = DepthBlock;
  static constexpr int64_t kTaskRows = TaskRows;
  static constexpr int64_t kMaxTaskPanels = MaxTaskPanels;
  static constexpr bool kXInPlace = false;
  static constexpr bool kXBlockConverts = false;
  const uint8_t* packed;
  int64_t in_blocks;
  const uint32_t* x_units;  // [rows, in_blocks * kInt8XBlockUnits]
  static int64_t depth(int64_t in_features) { return in_features; }
  const uint32_t* x_block(ConstMatrixView, int64_t row_begin, int64_t, int64_t depth_begin, int64_t) const {
    return x_units + row_begin * x_block_stride() + depth_begin / 32 * kInt8XBlockUnits;
  }
  int64_t x_block_stride() const { return in_blocks * kInt8XBlockUnits; }
  const void* block(int64_t panel, int64_t depth_begin) const {
    return packed + (panel * in_blocks + depth_begin / 32) * BlockBytes;
  }
  const void* next_block(int64_t panel, int64_t depth_begin) const { return block(panel, depth_begin); }
  int64_t block_bytes(int64_t depth) const { return ceil_div(depth, 32) * BlockBytes; }
  static int tile_rows() { return static_cast<int>(TileRows); }
  static LinearTileKernel tile(int rows) { return Tiles[static_cast<size_t>(rows - 1)]; }
};

}  // namespace jagged::kernels::cpu
