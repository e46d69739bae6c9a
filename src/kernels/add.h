// Elementwise add, in place: x += y (residual connections).
#pragma once

#include <cstdint>

namespace jagged::kernels {

namespace reference {
void add(float* x, const float* y, int64_t count);  // x, y [count]
}  // namespace reference

namespace cpu {
void add(float* x, const float* y, int64_t count);
}  // namespace cpu

}  // namespace jagged::kernels
