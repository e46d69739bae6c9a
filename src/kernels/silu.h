// SiLU (swish), in place: x = x * sigmoid(x) = x / (1 + exp(-x)).
#pragma once

#include <cstdint>

namespace jagged::kernels {

namespace reference {
void silu(float* x, int64_t count);  // x [count]
}  // namespace reference

namespace cpu {
void silu(float* x, int64_t count);
}  // namespace cpu

}  // namespace jagged::kernels
