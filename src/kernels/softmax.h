// Softmax of each row, in place: x[r, i] = exp(x[r, i] - max_r) / sum_j exp(x[r, j] - max_r).
// -inf entries (masked) get 0; a row of only -inf becomes NaN, as in PyTorch.
#pragma once

#include <cstdint>

namespace jagged::kernels {

namespace reference {
void softmax(float* x, int64_t rows, int64_t cols);  // x [rows, cols]
}  // namespace reference

namespace cpu {
void softmax(float* x, int64_t rows, int64_t cols);
}  // namespace cpu

}  // namespace jagged::kernels
