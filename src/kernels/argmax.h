// Index of the largest value of each row; the first such index on ties. NaNs are skipped; a row with no value
// above -inf (all -inf or NaN) gives the first -inf, or 0 when there is none.
#pragma once

#include <cstdint>

namespace jagged::kernels {

namespace reference {
void argmax(const float* x, int64_t rows, int64_t cols, int32_t* out);  // x [rows, cols] (cols >= 1); out [rows]
}  // namespace reference

namespace cpu {
void argmax(const float* x, int64_t rows, int64_t cols, int32_t* out);
}  // namespace cpu

}  // namespace jagged::kernels
