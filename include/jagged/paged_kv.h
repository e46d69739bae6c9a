// Views of a paged KV cache as the attention op reads it: one layer's key and value blocks, and where each
// sequence of a batch keeps its keys. The cache itself (allocation, block tables) is jagged::KvCache (kv_cache.h).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "jagged/dtype.h"

namespace jagged {

// One layer's blocks, in elements of dtype. One kv head of one block (a "head block"): K transposed,
// [head_dim][block_tokens]; V [block_tokens][value_stride], value_stride = ops::kv_value_stride(head_dim) (zeros
// past head_dim). block_tokens = ops::kv_block_tokens(): the attention kernel's key tile, so blocks are read in
// place. Block b, kv head h is head block kv_head_block(layer, num_blocks, b, h) from keys (and from values):
// blocks come in groups of blocks_per_group; within a group each kv head's blocks are one run of memory, which a
// decode row streams (block-major, its tiles lay num_kv_heads tiles apart: measured 15% slower attention at 32
// sequences); groups are group_stride head blocks apart, so a cache can keep every layer of a group together
// and its resident memory follows the groups in use (jagged::KvCache). blocks_per_group 0: one group of all
// num_blocks (a layer on its own, kv head by kv head).
// dtype: f32, or bf16 (half the bytes a decode row streams; keys and values rounded to nearest even when written,
// widened to f32 when read, so the arithmetic stays f32).
struct PagedKvLayer {
  void* keys = nullptr;
  void* values = nullptr;
  DType dtype = DType::f32;
  int64_t blocks_per_group = 0;
  int64_t group_stride = 0;  // head blocks from a group's start to the next's (blocks_per_group > 0)
};

// The head block of block `block`, kv head `kv_head` (see PagedKvLayer); num_blocks: PagedKvBatch::num_blocks.
inline int64_t kv_head_block(const PagedKvLayer& layer, int64_t num_blocks, int64_t block, int64_t kv_head) {
  const int64_t group_blocks = layer.blocks_per_group > 0 ? layer.blocks_per_group : num_blocks;
  return block / group_blocks * layer.group_stride + kv_head * group_blocks + block % group_blocks;
}

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
