// Row orders of the rotated projections (q, k) between RoPE conventions, shared by the exporters
// (model_export.cpp: Hugging Face directories, gguf_export.cpp: GGUF). Internal to src/runtime.
#pragma once

#include "jagged/tensor.h"

namespace jagged {

// Rows of a q or k weight [heads * head_dim, dim] (or bias) between adjacent-pair order (llama.cpp's "llama"
// RoPE: rows 2i, 2i+1 rotate together) and rotate-half order (its "qwen2" NEOX RoPE: rows i, i + head_dim/2).
Tensor permute_rotated_rows(const Tensor& weight, int num_heads, int head_dim, bool to_halves);

}  // namespace jagged
