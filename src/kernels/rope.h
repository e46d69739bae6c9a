// Rotary position embedding, in place. For every token t and head h, pair (a, b) of the head's elements is
// rotated by the angle positions[t] * inv_freq[i]: a' = a cos - b sin, b' = a sin + b cos. The pairs are
// (x_2i, x_2i+1) for RopePairs::adjacent and (x_i, x_i+head_dim/2) for RopePairs::halves.
// The angle is the f32 product positions[t] * inv_freq[i], as Hugging Face and llama2.c compute it; its
// cosine and sine are then taken in double, so both kernels see the same angles. Unchecked: ops/ checks.
#pragma once

#include <cstdint>

#include "jagged/ops.h"
#include "jagged/tensor.h"

namespace jagged::kernels {

namespace reference {
// x [num_tokens, num_heads * head_dim] (strided); positions [num_tokens]; inv_freq [head_dim / 2].
void rope(MatrixView x, int64_t num_heads, int64_t head_dim, const int32_t* positions, const float* inv_freq,
          ops::RopePairs pairs);
}  // namespace reference

namespace cpu {
// reference::rope in two parts, so that a forward computes its tokens' rotations once for every layer:
// rotations [rows, 2 * head_dim]: per token its cosines then its sines, in the layout rope_apply reads
// (adjacent pairs: (c_i, c_i) and (-s_i, s_i); halves: c_i and s_i in the first head_dim / 2 entries).
void rope_rotations(const int32_t* positions, int64_t rows, const float* inv_freq, int64_t head_dim,
                    ops::RopePairs pairs, float* rotations);
// x [rows, num_heads * head_dim] rotated by rotations [rows, 2 * head_dim].
void rope_apply(MatrixView x, int64_t num_heads, int64_t head_dim, const float* rotations, ops::RopePairs pairs);
}  // namespace cpu

}  // namespace jagged::kernels
