// A paged KV cache shared by every sequence of a model: fixed blocks of ops::kv_block_tokens() tokens, handed out
// one at a time as sequences grow and returned the moment a sequence ends; no sequence reserves the whole context.
// Keys are stored after RoPE, num_kv_heads of them per token (GQA/MQA store only those), as f32 or bf16 (half the
// bytes; see PagedKvLayer); the block layout is the attention kernel's (paged_kv.h), so attention reads the blocks
// in place. Blocks come in groups of group_blocks_ holding every layer (PagedKvLayer), on huge pages: attention
// reads its blocks with far fewer TLB misses (measured: 20-30% faster at 32 sequences), and the resident memory
// grows with the groups in use, not with the capacity. The memory is counted by jagged::memory_stats().
#pragma once

#include <cstdint>
#include <vector>

#include "jagged/model_config.h"
#include "jagged/paged_kv.h"
#include "jagged/tensor.h"

namespace jagged {

class KvCache {
 public:
  // Capacity in tokens, rounded up to whole blocks; dtype f32 or bf16. InvalidArgument when the capacity is not
  // positive or the type is another.
  KvCache(const LlamaConfig& config, int64_t capacity_tokens, DType dtype = DType::f32);

  // Bytes one token takes in every layer (keys and values, V rows and groups padded as stored), for sizing the
  // cache from a byte budget.
  static int64_t bytes_per_token(const LlamaConfig& config, DType dtype = DType::f32);

  DType dtype() const { return dtype_; }
  int64_t block_tokens() const { return block_tokens_; }
  int64_t num_blocks() const { return num_blocks_; }
  int64_t free_blocks() const { return free_count_; }
  int64_t used_blocks() const { return num_blocks_ - free_blocks(); }
  int64_t bytes() const { return static_cast<int64_t>(keys_.nbytes() + values_.nbytes()); }
  // Blocks needed to hold `tokens` tokens.
  int64_t blocks_for(int64_t tokens) const { return (tokens + block_tokens_ - 1) / block_tokens_; }

  // A free block's id, or -1 when none is left. `after`: the sequence's last block (-1 for its first), taken
  // from next when free, so that a sequence's blocks stay one run of memory (a decode row streams its blocks:
  // runs read faster than scattered blocks). Otherwise the block starts an extent for `expected_blocks` more
  // blocks (the sequence's expected growth) at the end of a free run that holds them (the smallest such run,
  // else the longest run), leaving the run's start to the sequence that ends just before it.
  int32_t allocate(int32_t after = -1, int64_t expected_blocks = 1);
  // Returns a block (InvalidArgument when it is not allocated: a double free would hand one block to two sequences).
  void release(int32_t block);

  // Layer `layer`'s blocks, for the model's forward.
  PagedKvLayer layer(int layer) const;
  std::vector<PagedKvLayer> layers() const;

 private:
  int num_layers_ = 0;
  DType dtype_ = DType::f32;
  int64_t block_tokens_ = 0;
  int64_t num_blocks_ = 0;
  // Groups of at least 256 tokens (SmolLM-135M's 30 layers: 5.6 MiB of f32 keys), the grain at which resident
  // memory follows use; each kv head's run of a group's blocks is still long enough to stream.
  int64_t group_blocks_ = 0;  // blocks in a group
  int64_t group_stride_ = 0;  // head blocks from a group to the next: num_layers x num_kv_heads x group_blocks_, padded
  int64_t num_kv_heads_ = 0;
  int64_t key_block_elements_ = 0;    // elements of one kv head's keys in one block
  int64_t value_block_elements_ = 0;  // and of its values
  // [groups, group_stride_ head blocks, head_dim, block_tokens] dtype; a group's head blocks: [num_layers,
  // num_kv_heads, group_blocks_], then padding
  Tensor keys_;
  Tensor values_;  // [groups, group_stride_ head blocks, block_tokens, value_stride] dtype
  int64_t free_count_ = 0;
  std::vector<uint8_t> allocated_;  // [num_blocks] 1 while a sequence holds the block
};

}  // namespace jagged
