// Linear layer over rows: out = x * weight^T + bias. Unchecked: ops/ checks shapes, strides and aliasing.
//
// The cpu kernel is our own GEMM over a weight packed once into column panels (the layout below), so a forward
// pass never repacks and a decode step streams the weight once.
//
// Batch invariance. Every output element is computed by the same chain of FMAs whatever the batch: its
// accumulator starts at the bias (or 0) and adds x[r, k] * w[n, k] for k = 0, 1, ..., in_features - 1 in order,
// stored to `out` and reloaded at fixed depth-block boundaries (kLinearDepthBlock, fixed). The number of rows,
// where a row falls in a register tile, the thread count and the work split change which rows are computed
// together, never the arithmetic of one element. (oneDNN's sgemm, used before, picks kernels and K splits from
// M and the thread count: rows of an M = 1 call differed in bits from the same rows in an M = 3960 call.)
// tests/kernels/linear_test.cpp checks it (windows of rows, thread counts, strided views).
#pragma once

#include <cstdint>

#include "core/quant_blocks.h"
#include "jagged/tensor.h"

namespace jagged::kernels {

namespace reference {
// x [rows, in_features] (strided); weight [out_features, in_features]; bias [out_features] or nullptr;
// out [rows, out_features] (strided). Double accumulation.
void linear(ConstMatrixView x, const float* weight, const float* bias, MatrixView out);
}  // namespace reference

namespace cpu {
// Packed weight layout: panel p holds output features [p * P, p * P + P) (P: the kernel's panel width, 3 SIMD
// vectors: 48 floats with AVX-512) as [in_features, P] (row k = the P weights that multiply x[., k]), zero past
// out_features; panels one after the other, each starting on a 64-byte boundary when the buffer does.
int64_t packed_linear_floats(int64_t out_features, int64_t in_features);
// weight [out_features, in_features] -> packed [packed_linear_floats(...)].
void pack_linear_weight(const float* weight, int64_t out_features, int64_t in_features, float* packed);
// The inverse, one row of the weight at a time: row `row` -> values [in_features].
void unpack_linear_row(const float* packed, int64_t in_features, int64_t row, float* values);

// out = x * weight^T + bias with the weight packed as above (64-byte aligned). x and out must not overlap.
void linear_packed(ConstMatrixView x, const float* packed, int64_t out_features, const float* bias, MatrixView out);

// How a call of a packed format walks its weights when its rows fit one task (up to 128: decode batches;
// linear_driver.h): streamed (the default: each task reads its panels one after the other, tasks of at
// least 1 MiB) or blocked (depth block by depth block across a task's panels, as prefill does). Both give the
// same bits (tested); the switch is process-wide and exists so that a benchmark can compare them in one process.
enum class LinearDecodeOrder : uint8_t { streamed, blocked };
void set_linear_decode_order(LinearDecodeOrder order);
LinearDecodeOrder linear_decode_order();

// bf16 weights. Layout: panels of kLinearBf16PanelCols output features (whatever the SIMD width, so one packed
// weight serves every path), each [ceil(in_features / 2), kLinearBf16PanelCols] u32: the pair (w[o, 2k],
// w[o, 2k + 1]) as two bf16 (even in the low half), zero past in_features and out_features.
// Arithmetic: x is rounded to bf16 (nearest even, relative error <= 2^-8), and each output accumulates, in f32,
// the products of x pair k and w pair k for k = 0, 1, ... in order, stored at fixed depth blocks of 128 pairs:
// batch-invariant as the f32 kernel, per path.
inline constexpr int64_t kLinearBf16PanelCols = 48;
enum class LinearBf16Path {
  amx_bf16,     // AMX tiles, tdpbf16ps (Intel Sapphire Rapids and later)
  avx512_bf16,  // vdpbf16ps (AVX512-BF16)
  portable,     // pairs widened to f32, two FMAs per pair (Highway, any CPU)
};
// Whether the CPU has AMX-BF16 and the OS granted this process its tile state.
bool amx_bf16_available();
// The fastest path this CPU runs (cpuid, at run time; AMX only after a self-check against the vector path).
LinearBf16Path best_linear_bf16_path();
const char* linear_bf16_path_name(LinearBf16Path path);
int64_t packed_linear_bf16_pairs(int64_t out_features, int64_t in_features);
// weight [out_features, in_features] f32 -> packed [packed_linear_bf16_pairs(...)] (rounded to nearest even).
void pack_linear_weight_bf16(const float* weight, int64_t out_features, int64_t in_features, uint32_t* packed);
void unpack_linear_weight_bf16(const uint32_t* packed, int64_t out_features, int64_t in_features, float* weight);
void unpack_linear_row_bf16(const uint32_t* packed, int64_t in_features, int64_t row, float* values);
// packed: 64-byte aligned. A path the CPU lacks falls back to the portable one.
void linear_packed_bf16(ConstMatrixView x, const uint32_t* packed, int64_t out_features, const float* bias,
                        MatrixView out, LinearBf16Path path);

// Q8_0 weights (llama.cpp's block: 32 int8 values q and an f16 scale d, w = d * q). Layout: panels of
// kLinearQ8PanelCols output features; per block of 32 inputs (kLinearQ8PanelBlockBytes), the panel's 48 f16
// scales, then 8 groups of 4 inputs, each [48, 4] bytes: output j's 32-bit lane holds q[j, 4g .. 4g + 3] + 128 as
// u8 (vpdpbusd's operand: unsigned bytes, 4 per lane); q = 0 past in_features, everything zero past out_features.
// Two paths read it (LinearQ8Path):
// - avx512_vnni: x rounded to Q8_0 blocks per row as llama.cpp's quantize_row_q8_0 (dx = max |x| / 127 held as
//   f16, qx = round-to-nearest-even(x * 127 / max |x|)), exact int32 block dot products, and per output
//   acc = fma(float(dot), dx * d, acc) for the blocks in order, stored at fixed depth blocks: llama.cpp's
//   arithmetic per block; batch-invariant (a row's blocks depend on its values only). The rounding of x costs
//   at most half a step, dx / 2, per value.
// - f32: the weight dequantized in registers (exact) and the f32 kernel's FMA chain on f32 x: the result equals
//   linear_packed on the dequantized weight, bit for bit.
inline constexpr int64_t kLinearQ8PanelCols = 48;
inline constexpr int64_t kQ8Block = 32;
inline constexpr int64_t kLinearQ8Group = 4;
inline constexpr int64_t kLinearQ8PanelBlockBytes = kLinearQ8PanelCols * 2 + kQ8Block * kLinearQ8PanelCols;
enum class LinearQ8Path {
  avx512_vnni,  // int8 activations, vpdpbusd (AVX512-VNNI + AVX512BW)
  f32,          // f32 activations, weights dequantized in registers (any CPU)
};
// The fastest path this CPU runs (cpuid, at run time).
LinearQ8Path best_linear_q8_0_path();
const char* linear_q8_0_path_name(LinearQ8Path path);
// llama.cpp's quantize_row_q8_0_ref on one block (how Q8_0 weights are made): d = max |v| / 127,
// q = round(v / d) (half away from zero), d stored as f16. count <= 32 values (the rest of the block is zero).
void quantize_q8_0_block(const float* values, int64_t count, uint16_t& scale, int8_t* quants);
int64_t packed_linear_q8_0_bytes(int64_t out_features, int64_t in_features);
void pack_linear_weight_q8_0(const float* weight, int64_t out_features, int64_t in_features, uint8_t* packed);
void unpack_linear_weight_q8_0(const uint8_t* packed, int64_t out_features, int64_t in_features, float* weight);
void unpack_linear_row_q8_0(const uint8_t* packed, int64_t in_features, int64_t row, float* values);
// Q8_0 rows as a GGUF file holds them ([out_features, in_features / 32] blocks of 34 bytes) -> packed, losslessly.
void pack_linear_weight_q8_0_blocks(const uint8_t* rows, int64_t out_features, int64_t in_features, uint8_t* packed);
// A path the CPU lacks falls back to f32.
void linear_packed_q8_0(ConstMatrixView x, const uint8_t* packed, int64_t out_features, const float* bias,
                        MatrixView out, LinearQ8Path path);

// The other GGUF block types (core/quant_blocks.h: Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K), repacked losslessly
// for the kernel (linear_blocks.cpp): per panel of 48 output features and group of 32 inputs, the steps and
// offsets of decode_block_groups as the file holds them (f16 d and m; the K types' f16 d, dmin and int8 sub-block
// factors), the low 4 bits of the quants as nibbles, 48 outputs side by side, and their higher bits as byte masks;
// zero past out_features. The file's bytes per value for Q4_0 and Q5_0; Q6_K 0.88 against the file's 0.82.
int64_t packed_linear_blocks_bytes(QuantType type, int64_t out_features, int64_t in_features);
// rows: [out_features, quant_row_bytes(type, in_features)] bytes, the blocks of each row in order.
void pack_linear_weight_blocks(QuantType type, const uint8_t* rows, int64_t out_features, int64_t in_features,
                               uint8_t* packed);
void unpack_linear_row_blocks(QuantType type, const uint8_t* packed, int64_t in_features, int64_t row,
                              float* values);
// path avx512_vnni (where the CPU has it): x rounded to Q8_0 blocks, exact int32 block dot products (Q4_0 and Q5_0
// with llama.cpp's arithmetic per block; offsets applied per block as dx sum(qx) offset; Q6_K per half block).
// f32: w = step * q - offset in registers (the dequantized value exactly), then the f32 kernel's FMA chain in the
// shared driver: linear_packed's result on the dequantized weight, bit for bit. Both batch-invariant.
void linear_packed_blocks(QuantType type, ConstMatrixView x, const uint8_t* packed, int64_t out_features,
                          const float* bias, MatrixView out, LinearQ8Path path);
}  // namespace cpu

}  // namespace jagged::kernels
