// Attention over ragged batches: every sequence attends only to itself. Unchecked: ops/attention.cpp checks
// shapes. Head h reads kv head h / (num_heads / num_kv_heads) (MHA, GQA, MQA), as FlashAttention and
// Hugging Face's repeat_kv do.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>

#include "jagged/paged_kv.h"
#include "jagged/tensor.h"

namespace jagged::kernels {

struct AttentionParams {
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;  // divides num_heads
  int64_t head_dim = 0;      // a multiple of 8
  float scale = 0.0f;        // resolved: > 0
  bool causal = true;

  int64_t group() const { return num_heads / num_kv_heads; }  // query heads per kv head
  int64_t kv_head_of(int64_t head) const { return head / group(); }
};

// All the varlen arithmetic in one place (FlashAttention's BlockInfo): where a sequence's rows are and which
// keys each of its queries sees. Kernels index queries and keys from 0 within the sequence.
struct SequenceBlock {
  int64_t row_begin = 0;   // first row of the sequence in q, k, v, out
  int64_t length = 0;      // its tokens (queries)
  int64_t key_offset = 0;  // keys before its first query (a KV cache's context); query i is at position key_offset + i

  // Sequence `seq` of a packed batch: rows [cu_seqlens[seq], cu_seqlens[seq + 1]).
  static SequenceBlock packed(std::span<const int32_t> cu_seqlens, int64_t seq) {
    return {cu_seqlens[seq], int64_t{cu_seqlens[seq + 1]} - cu_seqlens[seq]};
  }
  // Sequence `seq` of a padded batch: rows [seq * max_seqlen, seq * max_seqlen + length).
  static SequenceBlock padded(int64_t seq, int64_t max_seqlen, int64_t length) { return {seq * max_seqlen, length}; }

  // Query `query` sees keys [0, key_end(query)).
  int64_t key_end(int64_t query, bool causal) const {
    return key_offset + (causal ? std::min(query + 1, length) : length);
  }

  // The `head`-th head_dim-wide slice of the sequence's row `index`.
  template <typename T>
  T* head_row(MatrixRef<T> matrix, int64_t index, int64_t head, int64_t head_dim) const {
    return matrix.row(row_begin + index) + head * head_dim;
  }
};

using jagged::PagedKvBatch;
using jagged::PagedKvLayer;

// Sequence `seq` of a paged batch: its rows in this call, after key_offset cached keys.
inline SequenceBlock paged_sequence(const PagedKvBatch& batch, int64_t seq) {
  SequenceBlock block = SequenceBlock::packed(batch.cu_seqlens, seq);
  block.key_offset = batch.context_lengths[seq];
  return block;
}

namespace reference {
// Naive per (sequence, head, query): scores, mask, softmax, weighted sum, in double.
// q, out [num_tokens, num_heads * head_dim]; k, v [num_tokens, num_kv_heads * head_dim]; strided views.
void attention(ConstMatrixView q, ConstMatrixView k, ConstMatrixView v, MatrixView out,
               std::span<const int32_t> cu_seqlens, const AttentionParams& params);
// Each sequence's queries q[cu_seqlens[s], cu_seqlens[s + 1]) are at positions context_lengths[s] + i of a sequence
// whose keys and values are k, v rows [key_cu_seqlens[s], key_cu_seqlens[s + 1]) (context plus new keys).
void attention_with_context(ConstMatrixView q, ConstMatrixView k, ConstMatrixView v, MatrixView out,
                            std::span<const int32_t> cu_seqlens, std::span<const int32_t> key_cu_seqlens,
                            std::span<const int32_t> context_lengths, const AttentionParams& params);
}  // namespace reference

namespace cpu {
// Fused, tiled, online-softmax attention (FlashAttention-2 style): no score matrix, work ~ sum of L_i^2 (about
// half when causal). Each sequence's output is bit-identical whatever else shares the batch. Shapes as above.
void attention(ConstMatrixView q, ConstMatrixView k, ConstMatrixView v, MatrixView out,
               std::span<const int32_t> cu_seqlens, const AttentionParams& params);

// Score pairs (summed over heads) that cpu::attention evaluates for this batch: the visible pairs plus the masked
// ones it computes where a vector of keys crosses the causal diagonal or a sequence's end. For benchmarks.
int64_t attention_score_pairs(std::span<const int32_t> cu_seqlens, const AttentionParams& params);
// Bytes of scratch cpu::attention allocates for this batch (per-thread packed K/V and tile buffers, all threads).
// Not Tensors: a forward pass allocates no Tensor per layer. For benchmarks' memory reports.
int64_t attention_workspace_bytes(std::span<const int32_t> cu_seqlens, const AttentionParams& params);

// The padded baseline frameworks use: rows are [batch, max_seqlen] positions; scores [batch, num_heads,
// max_seqlen, max_seqlen] are materialised with GEMMs (oneDNN sgemm), masked, softmaxed and applied.
// key_padding_mask [batch, max_seqlen] u8 (1 = real key). A query row that sees no key at all (all keys
// padding, or masked by causality) comes out as zeros; padded query rows otherwise attend to the real keys
// like any other row (finite, as in PyTorch). Shapes as above with num_tokens = batch * max_seqlen.
// scores: a [batch, num_heads, max_seqlen, max_seqlen] f32 workspace, or nullptr to allocate it (as frameworks
// do, through the accounting allocator); benchmarks pass a reused one to time the arithmetic without page faults.
void attention_padded(ConstMatrixView q, ConstMatrixView k, ConstMatrixView v, MatrixView out, int64_t batch,
                      int64_t max_seqlen, const uint8_t* key_padding_mask, const AttentionParams& params,
                      float* scores = nullptr);
// Keys per KV cache block (the kernel's key tile) and floats per cached V row, for this CPU's vector width.
int64_t kv_block_tokens();
int64_t kv_value_stride(int64_t head_dim);

// Writes this call's K and V rows (k, v [num_tokens, num_kv_heads * head_dim]; keys after RoPE) into their slots:
// row i of sequence s is key context_lengths[s] + i of s. Its blocks must already be in the table.
void paged_kv_write(ConstMatrixView k, ConstMatrixView v, const PagedKvBatch& batch, const PagedKvLayer& layer,
                    const AttentionParams& params);

// Attention of this call's queries (q, out [num_tokens, num_heads * head_dim]) to every key of their sequence in
// the cache (context plus the new keys, written first by paged_kv_write), causal within the new tokens. Key tiles
// start at absolute key positions, so a query's result is bit-identical to cpu::attention over the whole sequence,
// whatever else shares the call, however the sequence's tokens were split into calls, and for any thread count.
// workspace: paged_attention_workspace_bytes() bytes, 64-byte aligned, for the threads that will run.
void paged_attention(ConstMatrixView q, MatrixView out, const PagedKvBatch& batch, const PagedKvLayer& layer,
                     const AttentionParams& params, std::span<std::byte> workspace);
int64_t paged_attention_workspace_bytes(const AttentionParams& params, int threads);
}  // namespace cpu

}  // namespace jagged::kernels
