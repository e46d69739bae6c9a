#include "jagged/kv_cache.h"

#include <algorithm>
#include <climits>

#include "core/huge_pages.h"
#include "jagged/error.h"
#include "jagged/ops.h"

namespace jagged {

namespace {

// Where a cache's blocks go: groups of `blocks` blocks holding every layer, `stride` head blocks apart.
struct GroupLayout {
  int64_t blocks;
  int64_t stride;
};

// The smallest group of 256 to 1024 tokens whose keys, padded to whole huge pages (2 MiB), waste at most an
// eighth: a group in use then makes only its own pages resident. A model so small that no such group exists (its
// groups far below a huge page) gets 256-token groups, unpadded.
GroupLayout group_layout(const LlamaConfig& config, DType dtype) {
  constexpr int64_t kHugePage = core::kHugePageBytes;
  constexpr int64_t kGroupTokens = 256;
  const int64_t block_tokens = ops::kv_block_tokens();
  const int64_t key_block_bytes = config.head_dim * block_tokens * static_cast<int64_t>(dtype_size(dtype));
  const int64_t block_bytes = int64_t{config.num_layers} * config.num_kv_heads * key_block_bytes;  // all layers
  const int64_t base = std::max<int64_t>(1, kGroupTokens / block_tokens);
  for (int64_t blocks = base; blocks <= 4 * base && key_block_bytes > 0; ++blocks) {
    const int64_t bytes = blocks * block_bytes;
    const int64_t padded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    if (8 * (padded - bytes) <= bytes) return {blocks, (padded + key_block_bytes - 1) / key_block_bytes};
  }
  return {base, int64_t{config.num_layers} * config.num_kv_heads * base};
}

}  // namespace

int64_t KvCache::bytes_per_token(const LlamaConfig& config, DType dtype) {
  check_kv_dtype(dtype, "KV cache");
  // A group's keys and values, padding included, over its tokens (rounded up: a byte budget is never exceeded).
  const GroupLayout group = group_layout(config, dtype);
  const int64_t block_tokens = ops::kv_block_tokens();
  const int64_t head_block_elements = (config.head_dim + ops::kv_value_stride(config.head_dim)) * block_tokens;
  const int64_t group_bytes = group.stride * head_block_elements * static_cast<int64_t>(dtype_size(dtype));
  const int64_t group_tokens = group.blocks * block_tokens;
  return (group_bytes + group_tokens - 1) / group_tokens;
}

KvCache::KvCache(const LlamaConfig& config, int64_t capacity_tokens, DType dtype)
    : num_layers_(config.num_layers), dtype_(dtype), block_tokens_(ops::kv_block_tokens()) {
  if (capacity_tokens <= 0) {
    throw InvalidArgument(concat("KV cache capacity must be at least one token, got ", capacity_tokens));
  }
  check_kv_dtype(dtype, "KV cache");
  num_blocks_ = blocks_for(capacity_tokens);
  if (num_blocks_ > INT32_MAX) throw InvalidArgument(concat("KV cache of ", capacity_tokens, " tokens is too large"));
  const int64_t value_stride = ops::kv_value_stride(config.head_dim);
  num_kv_heads_ = config.num_kv_heads;
  key_block_elements_ = config.head_dim * block_tokens_;
  value_block_elements_ = block_tokens_ * value_stride;
  const GroupLayout group = group_layout(config, dtype);
  group_blocks_ = group.blocks;
  group_stride_ = group.stride;
  const int64_t groups = (num_blocks_ + group_blocks_ - 1) / group_blocks_;
  keys_ = core::huge_page_tensor({groups, group_stride_, config.head_dim, block_tokens_}, dtype, true);
  values_ = core::huge_page_tensor({groups, group_stride_, block_tokens_, value_stride}, dtype, true);
  allocated_.assign(static_cast<size_t>(num_blocks_), 0);
  free_count_ = num_blocks_;
}

int32_t KvCache::allocate(int32_t after, int64_t expected_blocks) {
  if (free_count_ == 0) return -1;
  int64_t block = after >= 0 && after + 1 < num_blocks_ && !allocated_[static_cast<size_t>(after) + 1] ? after + 1 : -1;
  if (block < 0) {
    // One pass over the free runs: the smallest that holds the extent, else the longest.
    const int64_t wanted = std::max<int64_t>(1, expected_blocks);
    int64_t fit_begin = -1, fit_length = INT64_MAX, long_begin = -1, long_length = 0;
    for (int64_t begin = 0; begin < num_blocks_;) {
      if (allocated_[static_cast<size_t>(begin)]) {
        ++begin;
        continue;
      }
      int64_t end = begin;
      while (end < num_blocks_ && !allocated_[static_cast<size_t>(end)]) ++end;
      const int64_t length = end - begin;
      if (length >= wanted && length < fit_length) fit_begin = begin, fit_length = length;
      if (length > long_length) long_begin = begin, long_length = length;
      begin = end;
    }
    block = fit_begin >= 0 ? fit_begin + fit_length - wanted : long_begin;
  }
  allocated_[static_cast<size_t>(block)] = 1;
  --free_count_;
  return static_cast<int32_t>(block);
}

void KvCache::release(int32_t block) {
  if (block < 0 || block >= num_blocks_ || !allocated_[static_cast<size_t>(block)]) {
    throw InvalidArgument(concat("KV cache: block ", block, " is not allocated"));
  }
  allocated_[static_cast<size_t>(block)] = 0;
  ++free_count_;
}

PagedKvLayer KvCache::layer(int layer) const {
  if (layer < 0 || layer >= num_layers_) {
    throw InvalidArgument(concat("KV cache: layer ", layer, " outside [0, ", num_layers_, ")"));
  }
  // The cache is mutable through its views by design: the model's forward writes the new keys into it.
  const size_t element = dtype_size(dtype_);
  const int64_t layer_head_blocks = layer * num_kv_heads_ * group_blocks_;  // where the layer starts in a group
  auto* keys = static_cast<std::byte*>(const_cast<void*>(keys_.raw_data()));
  auto* values = static_cast<std::byte*>(const_cast<void*>(values_.raw_data()));
  return {keys + static_cast<size_t>(layer_head_blocks * key_block_elements_) * element,
          values + static_cast<size_t>(layer_head_blocks * value_block_elements_) * element, dtype_, group_blocks_,
          group_stride_};
}

std::vector<PagedKvLayer> KvCache::layers() const {
  std::vector<PagedKvLayer> all;
  for (int i = 0; i < num_layers_; ++i) all.push_back(layer(i));
  return all;
}

}  // namespace jagged
