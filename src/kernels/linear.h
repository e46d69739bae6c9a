// Linear layer over rows: out = x * weight^T + bias. Unchecked: ops/ checks shapes, strides and aliasing.
//
// Batch invariance. oneDNN's sgemm picks its code path and blocking from the whole call: M, N, K, the leading
// dimensions and its thread count (gemv below 16 rows, a "no-copy" kernel for some shapes, K split across
// threads for small M...). Measured on oneDNN 2.6 (AVX-512), one call over all rows changed a row's bits with
// the batch: rows computed with M = 1, 15 or 37 differ from the same rows in an M = 3960 call, and with K = 1000
// even M = 16..129 differ. So the cpu kernel never lets a call's shape depend on the batch: it cuts the rows
// into blocks of kGemmBlockRows and runs one single-threaded sgemm per block (inside our OpenMP region oneDNN
// does not spawn threads) with the same M, N, K, lda, ldb and ldc every time. The last, partial block (and any
// block of a strided view) is copied into an aligned scratch zero-padded to kGemmBlockRows rows. A row's result
// then depends only on the row and the weight: tests/kernels/linear_test.cpp checks it (windows of rows, thread
// counts, strided views); bench/ops_bench.cpp measures what it costs (BM_LinearBlockRows, BM_LinearSmallBatch).
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
inline constexpr int64_t kGemmBlockRows = 128;
// x and out must not overlap.
void linear(ConstMatrixView x, const float* weight, const float* bias, MatrixView out);
// The same with another block height (the benchmark measures what the blocking costs).
void linear_blocked(ConstMatrixView x, const float* weight, const float* bias, MatrixView out, int64_t block_rows);
}  // namespace cpu

}  // namespace jagged::kernels
