// Pooling a batch of per-token vectors into one vector per sequence (sentence embeddings), and L2
// normalisation of rows. Pooling reads the batch layout (sequence boundaries), like attention.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "jagged/tensor.h"

namespace jagged {

enum class Pooling {
  cls,   // the sequence's first token ([CLS] for BERT-family encoders)
  mean,  // the mean over the sequence's real tokens
  max,   // the element-wise maximum over the sequence's real tokens
};

std::string_view pooling_name(Pooling pooling);  // "cls", "mean", "max"
// Parses a pooling_name(); InvalidArgument listing the choices otherwise.
Pooling parse_pooling(std::string_view name);

namespace ops {

// One row per sequence: out[seq] = pooling of x's rows [cu_seqlens[seq], cu_seqlens[seq + 1]). An empty sequence
// pools to zeros (all three kinds). Each sequence is reduced alone, in token order: batch invariant.
// x [num_tokens, dim] f32; cu_seqlens [num_seqs + 1]; out [num_seqs, dim] f32.
void pool(const Tensor& x, std::span<const int32_t> cu_seqlens, Pooling pooling, Tensor& out);

// The padded formulation frameworks use: every one of the max_seqlen positions of each sequence is visited and
// the padding masked out (mean: masked sum / number of real tokens; max: padding excluded). Same results as
// pool() on the same real tokens, including zeros for an empty sequence.
// x [num_seqs * max_seqlen, dim] f32; mask [num_seqs, max_seqlen] u8 (1 = real token); out [num_seqs, dim] f32.
void pool_padded(const Tensor& x, const Tensor& mask, Pooling pooling, Tensor& out);

// Each row divided by its L2 norm, in place: x[r] /= max(||x[r]||, 1e-12) (PyTorch's F.normalize), so an
// all-zero row stays zero. x [rows, dim] f32.
void l2_normalize(Tensor& x);

}  // namespace ops
}  // namespace jagged
