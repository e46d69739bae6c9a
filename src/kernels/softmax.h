// Softmax of each row, in place: x[r, i] = exp(x[r, i] - max_r) / sum_j exp(x[r, j] - max_r).
// -inf entries (masked) get 0; a row of only -inf becomes NaN, as in PyTorch.
#pragma once

#include <cstdint>

namespace jagged::kernels {

// Sampling weights, in place: x[i] = exp((x[i] - max) / divisor) in double, max the largest x (so the largest
// weight is 1; divisor: the temperature, > 0; n > 0). Also their sums in blocks of kWeightBlock elements:
// block_sums[b] = the sum of x[b * kWeightBlock, (b + 1) * kWeightBlock) that are >= floor (0: all), in a fixed
// order, so a sampler finds the block a draw lands in without walking the whole row.
inline constexpr int64_t kWeightBlock = 256;
inline int64_t weight_blocks(int64_t n) { return (n + kWeightBlock - 1) / kWeightBlock; }

namespace reference {
void softmax(float* x, int64_t rows, int64_t cols);  // x [rows, cols]
// x [n]; block_sums [weight_blocks(n)]
void sampling_weights(double* x, int64_t n, double divisor, double floor, double* block_sums);
}  // namespace reference

namespace cpu {
void softmax(float* x, int64_t rows, int64_t cols);
void sampling_weights(double* x, int64_t n, double divisor, double floor, double* block_sums);
}  // namespace cpu

}  // namespace jagged::kernels
