#include "jagged/kv_cache.h"

#include "jagged/error.h"
#include "jagged/ops.h"

namespace jagged {

int64_t KvCache::bytes_per_token(const LlamaConfig& config) {
  const int64_t per_layer = int64_t{config.num_kv_heads} * (config.head_dim + ops::kv_value_stride(config.head_dim));
  return per_layer * config.num_layers * static_cast<int64_t>(sizeof(float));
}

KvCache::KvCache(const LlamaConfig& config, int64_t capacity_tokens)
    : num_layers_(config.num_layers), block_tokens_(ops::kv_block_tokens()) {
  if (capacity_tokens <= 0) {
    throw InvalidArgument(concat("KV cache capacity must be at least one token, got ", capacity_tokens));
  }
  num_blocks_ = blocks_for(capacity_tokens);
  if (num_blocks_ > INT32_MAX) throw InvalidArgument(concat("KV cache of ", capacity_tokens, " tokens is too large"));
  const int64_t value_stride = ops::kv_value_stride(config.head_dim);
  key_layer_floats_ = num_blocks_ * config.num_kv_heads * config.head_dim * block_tokens_;
  value_layer_floats_ = num_blocks_ * config.num_kv_heads * block_tokens_ * value_stride;
  keys_ = Tensor({config.num_layers, config.num_kv_heads, num_blocks_, config.head_dim, block_tokens_});
  values_ = Tensor({config.num_layers, config.num_kv_heads, num_blocks_, block_tokens_, value_stride});
  free_.reserve(static_cast<size_t>(num_blocks_));
  for (int64_t block = num_blocks_ - 1; block >= 0; --block) free_.push_back(static_cast<int32_t>(block));
  allocated_.assign(static_cast<size_t>(num_blocks_), 0);
}

int32_t KvCache::allocate() {
  if (free_.empty()) return -1;
  const int32_t block = free_.back();
  free_.pop_back();
  allocated_[static_cast<size_t>(block)] = 1;
  return block;
}

void KvCache::release(int32_t block) {
  if (block < 0 || block >= num_blocks_ || !allocated_[static_cast<size_t>(block)]) {
    throw InvalidArgument(concat("KV cache: block ", block, " is not allocated"));
  }
  allocated_[static_cast<size_t>(block)] = 0;
  free_.push_back(block);
}

PagedKvLayer KvCache::layer(int layer) const {
  if (layer < 0 || layer >= num_layers_) {
    throw InvalidArgument(concat("KV cache: layer ", layer, " outside [0, ", num_layers_, ")"));
  }
  // The cache is mutable through its views by design: the model's forward writes the new keys into it.
  float* keys = const_cast<float*>(keys_.data<float>());
  float* values = const_cast<float*>(values_.data<float>());
  return {keys + layer * key_layer_floats_, values + layer * value_layer_floats_};
}

std::vector<PagedKvLayer> KvCache::layers() const {
  std::vector<PagedKvLayer> all;
  for (int i = 0; i < num_layers_; ++i) all.push_back(layer(i));
  return all;
}

}  // namespace jagged
