// RMSNorm over rows: out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight. Unchecked: ops/ checks shapes.
#pragma once

#include <cstdint>

namespace jagged::kernels {

namespace reference {
// x, out [rows, dim] (out may alias x); weight [dim]. Double accumulation.
void rmsnorm(const float* x, const float* weight, int64_t rows, int64_t dim, float eps, float* out);
}  // namespace reference

namespace cpu {
void rmsnorm(const float* x, const float* weight, int64_t rows, int64_t dim, float eps, float* out);
}  // namespace cpu

}  // namespace jagged::kernels
