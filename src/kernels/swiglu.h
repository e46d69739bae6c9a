// SwiGLU over rows of a fused gate/up projection: out[r, j] = silu(gate_up[r, j]) * gate_up[r, ffn_dim + j].
#pragma once

#include <cstdint>

namespace jagged::kernels {

namespace reference {
// gate_up [rows, 2 * ffn_dim]; out [rows, ffn_dim] (distinct memory).
void swiglu(const float* gate_up, int64_t rows, int64_t ffn_dim, float* out);
}  // namespace reference

namespace cpu {
void swiglu(const float* gate_up, int64_t rows, int64_t ffn_dim, float* out);
}  // namespace cpu

}  // namespace jagged::kernels
