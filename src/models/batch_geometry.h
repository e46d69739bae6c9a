// The shape of a batch in one layout, which both model families keep beside their activations, and the one
// op that reads it besides RoPE: attention.
#pragma once

#include <cstdint>
#include <vector>

#include "jagged/forward.h"
#include "jagged/ops.h"
#include "jagged/tensor.h"

namespace jagged::models {

struct BatchGeometry {
  int64_t rows = 0;                  // real tokens (nested) or num_seqs * max_seqlen (padded)
  BatchLayout layout = BatchLayout::nested;
  std::vector<int32_t> cu_seqlens;   // nested: the batch's offsets
  int64_t num_seqs = 0;
  int64_t max_seqlen = 0;
  Tensor key_padding_mask;           // padded: [num_seqs, max_seqlen] u8

  // Attention in this layout: the fused ragged kernel (nested) or the masked padded formulation.
  // q [rows, num_heads * head_dim]; k, v [rows, num_kv_heads * head_dim]; out [rows, num_heads * head_dim].
  void attention(ConstMatrixView q, ConstMatrixView k, ConstMatrixView v, MatrixView out,
                 const ops::AttentionConfig& config) const {
    if (layout == BatchLayout::nested) {
      ops::attention(q, k, v, out, cu_seqlens, config);
    } else {
      ops::attention_padded(q, k, v, out, num_seqs, max_seqlen, key_padding_mask, config);
    }
  }
};

}  // namespace jagged::models
