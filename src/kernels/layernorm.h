// LayerNorm over rows: out[r] = (x[r] - mean) / sqrt(var + eps) * weight + bias (biased variance, as PyTorch).
// Unchecked: ops/ checks shapes.
#pragma once

#include <cstdint>

namespace jagged::kernels {

namespace reference {
// x, out [rows, dim] (out may alias x); weight, bias [dim]. Double accumulation, two-pass variance.
void layernorm(const float* x, const float* weight, const float* bias, int64_t rows, int64_t dim, float eps,
               float* out);
}  // namespace reference

namespace cpu {
void layernorm(const float* x, const float* weight, const float* bias, int64_t rows, int64_t dim, float eps,
               float* out);
}  // namespace cpu

}  // namespace jagged::kernels
