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
// The inverse: packed -> weight [out_features, in_features].
void unpack_linear_weight(const float* packed, int64_t out_features, int64_t in_features, float* weight);

// out = x * weight^T + bias with the weight packed as above (64-byte aligned). x and out must not overlap.
void linear_packed(ConstMatrixView x, const float* packed, int64_t out_features, const float* bias, MatrixView out);
}  // namespace cpu

}  // namespace jagged::kernels
