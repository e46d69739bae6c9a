// Pooling per sequence and L2 normalisation of rows. Unchecked: ops/pooling.cpp checks shapes.
// An empty sequence (or, padded, one whose mask has no real token) pools to zeros.
#pragma once

#include <cstdint>

#include "jagged/pooling.h"

namespace jagged::kernels {

namespace reference {
// x [num_tokens, dim]; cu_seqlens [num_seqs + 1]; out [num_seqs, dim]. Double accumulation.
void pool(const float* x, int64_t dim, const int32_t* cu_seqlens, int64_t num_seqs, Pooling pooling, float* out);
// x [num_seqs * max_seqlen, dim]; mask [num_seqs, max_seqlen] (nonzero = real token); out [num_seqs, dim].
void pool_padded(const float* x, int64_t dim, const uint8_t* mask, int64_t num_seqs, int64_t max_seqlen,
                 Pooling pooling, float* out);
// x [rows, dim], in place.
void l2_normalize(float* x, int64_t rows, int64_t dim);
}  // namespace reference

namespace cpu {
void pool(const float* x, int64_t dim, const int32_t* cu_seqlens, int64_t num_seqs, Pooling pooling, float* out);
void pool_padded(const float* x, int64_t dim, const uint8_t* mask, int64_t num_seqs, int64_t max_seqlen,
                 Pooling pooling, float* out);
void l2_normalize(float* x, int64_t rows, int64_t dim);
}  // namespace cpu

// The smallest norm l2_normalize divides by (PyTorch's F.normalize eps).
inline constexpr float kL2NormalizeEps = 1e-12f;

}  // namespace jagged::kernels
