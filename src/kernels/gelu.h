// GELU, in place, in its two forms:
//   erf:  x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2)))                  (BERT, PyTorch's default)
//   tanh: 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3)))         (GPT-2, gelu_pytorch_tanh)
#pragma once

#include <cstdint>

namespace jagged::kernels {

namespace reference {
void gelu_erf(float* x, int64_t count);   // x [count]
void gelu_tanh(float* x, int64_t count);  // x [count]
}  // namespace reference

namespace cpu {
void gelu_erf(float* x, int64_t count);
void gelu_tanh(float* x, int64_t count);
}  // namespace cpu

}  // namespace jagged::kernels
