// Views of a paged KV cache as the attention op reads it: one layer's key and value blocks, and where each
// sequence of a batch keeps its keys. The cache itself (allocation, block tables) is jagged::KvCache (kv_cache.h).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "jagged/dtype.h"

namespace jagged {

// One layer's blocks, kv head by kv head, in elements of dtype. Block b, kv head h: K transposed at
// keys + (h * num_blocks + b) * head_dim * block_tokens, [head_dim][block_tokens]; V at
// values + (h * num_blocks + b) * block_tokens * value_stride, [block_tokens][value_stride], value_stride =
// ops::kv_value_stride(head_dim) (zeros past head_dim). block_tokens = ops::kv_block_tokens(): the attention
// kernel's key tile, so blocks are read in place. Head-major: a sequence's blocks, handed out in order, are one
// run of memory per kv head, which a decode row streams (block-major, its tiles lay num_kv_heads tiles apart:
// measured 15% slower attention at 32 sequences).
// dtype: f32, or bf16 (half the bytes a decode row streams; keys and values rounded to nearest even when written,
// widened to f32 when read, so the arithmetic stays f32).
struct PagedKvLayer {
  void* keys = nullptr;
  void* values = nullptr;
  DType dtype = DType::f32;
};

// InvalidArgument, its message starting with `who`, unless a KV cache can hold `dtype` (f32, bf16).
void check_kv_dtype(DType dtype, std::string_view who);
// "f32" or "bf16" (--kv-dtype, kv_dtype=) -> the type; InvalidArgument naming the choices otherwise.
DType parse_kv_dtype(std::string_view name);

// The sequences of one forward call and their blocks.
struct PagedKvBatch {
  std::span<const int32_t> cu_seqlens;           // [num_seqs + 1] rows of this call's tokens (queries, new keys)
  std::span<const int32_t> context_lengths;      // [num_seqs] keys cached before this call's tokens
  std::span<const int32_t> block_tables;         // the blocks of all sequences, concatenated
  std::span<const int32_t> block_table_offsets;  // [num_seqs + 1] sequence s: block_tables[offsets[s], offsets[s + 1])
  int64_t num_blocks = 0;                        // blocks in the cache (every id is below this)
};

}  // namespace jagged
