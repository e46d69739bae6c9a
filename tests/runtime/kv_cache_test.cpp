// The paged KV cache's block allocation: every block handed out once, a sequence's blocks kept in one run where the
// free space allows (a decode row streams them), sizes and element types.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "jagged/error.h"
#include "jagged/kv_cache.h"
#include "jagged/ops.h"

namespace jagged {
namespace {

LlamaConfig small_config() {
  LlamaConfig config;
  config.num_layers = 2;
  config.num_heads = 2;
  config.num_kv_heads = 1;
  config.head_dim = 16;
  return config;
}

// Grows a sequence by one block the way the engine does: after its last block, expecting `expected` more.
int32_t grow(KvCache& cache, std::vector<int32_t>& blocks, int64_t expected) {
  const int32_t block = cache.allocate(blocks.empty() ? -1 : blocks.back(), expected);
  if (block >= 0) blocks.push_back(block);
  return block;
}

bool one_run(const std::vector<int32_t>& blocks) {
  for (size_t i = 1; i < blocks.size(); ++i) {
    if (blocks[i] != blocks[i - 1] + 1) return false;
  }
  return true;
}

TEST(KvCache, SequencesGrowingInTurnKeepTheirBlocksInOneRun) {
  // 8 sequences of 4 blocks in a cache of exactly 32: prompts first (2 blocks each), then decode steps that
  // cross block boundaries in turn, as 8 requests decoding together do.
  KvCache cache(small_config(), 32 * ops::kv_block_tokens());
  ASSERT_EQ(cache.num_blocks(), 32);
  std::vector<std::vector<int32_t>> seqs(8);
  for (auto& blocks : seqs) {
    ASSERT_GE(grow(cache, blocks, 4), 0);
    ASSERT_GE(grow(cache, blocks, 3), 0);
  }
  for (int round = 0; round < 2; ++round) {
    for (auto& blocks : seqs) ASSERT_GE(grow(cache, blocks, 2 - round), 0);
  }
  EXPECT_EQ(cache.free_blocks(), 0);
  EXPECT_EQ(cache.allocate(-1, 1), -1) << "a full cache hands out nothing";
  std::vector<int32_t> all;
  for (const auto& blocks : seqs) {
    EXPECT_TRUE(one_run(blocks)) << "blocks " << ::testing::PrintToString(blocks);
    all.insert(all.end(), blocks.begin(), blocks.end());
  }
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end()) << "a block went to two sequences";
}

TEST(KvCache, FragmentedCacheStillHandsOutEveryBlock) {
  KvCache cache(small_config(), 10 * ops::kv_block_tokens());
  std::vector<int32_t> taken;
  for (int i = 0; i < 10; ++i) taken.push_back(cache.allocate(-1, 3));
  for (size_t i = 0; i < taken.size(); i += 2) cache.release(taken[i]);  // every other block free
  EXPECT_EQ(cache.free_blocks(), 5);
  std::vector<int32_t> blocks;
  for (int i = 0; i < 5; ++i) ASSERT_GE(grow(cache, blocks, 5 - i), 0);
  EXPECT_EQ(cache.free_blocks(), 0);
  EXPECT_EQ(cache.allocate(blocks.back(), 1), -1);
  for (const int32_t block : blocks) cache.release(block);
  EXPECT_THROW(cache.release(blocks[0]), InvalidArgument) << "a double free would hand one block to two sequences";
  EXPECT_THROW(cache.release(-1), InvalidArgument);
}

TEST(KvCache, Bf16HalvesTheBytesAndOtherTypesAreRefused) {
  const LlamaConfig config = small_config();
  const KvCache f32(config, 256), bf16(config, 256, DType::bf16);
  EXPECT_EQ(bf16.bytes() * 2, f32.bytes());
  EXPECT_EQ(KvCache::bytes_per_token(config, DType::bf16) * 2, KvCache::bytes_per_token(config));
  EXPECT_EQ(bf16.layer(1).dtype, DType::bf16);
  EXPECT_THROW(KvCache(config, 256, DType::q8_0), InvalidArgument);
  EXPECT_THROW(KvCache(config, 0), InvalidArgument);
}

}  // namespace
}  // namespace jagged

namespace jagged {
namespace {

// Blocks come in groups holding every layer; a group's keys fill whole huge pages where padding them wastes at
// most an eighth (SmolLM-135M: 30 layers x 3 kv heads of 64), else (a tiny model) groups of 256 tokens, unpadded.
TEST(KvCache, GroupsFillWholeHugePagesWhereThatWastesLittle) {
  LlamaConfig smollm = small_config();
  smollm.num_layers = 30;
  smollm.num_heads = 9;
  smollm.num_kv_heads = 3;
  smollm.head_dim = 64;
  const int64_t block_tokens = ops::kv_block_tokens();
  for (const DType dtype : {DType::f32, DType::bf16}) {
    const KvCache cache(smollm, 4096, dtype);
    const PagedKvLayer first = cache.layer(0), second = cache.layer(1);
    const int64_t head_block_bytes = 64 * block_tokens * static_cast<int64_t>(dtype_size(dtype));
    const int64_t used = 30 * 3 * first.blocks_per_group * head_block_bytes;
    const int64_t padded = first.group_stride * head_block_bytes;
    EXPECT_GE(first.blocks_per_group * block_tokens, 256) << dtype_name(dtype);
    EXPECT_LE(first.blocks_per_group * block_tokens, 1024) << dtype_name(dtype);
    EXPECT_EQ(padded % (int64_t{2} << 20), 0) << dtype_name(dtype) << ": a group of " << padded << " bytes";
    EXPECT_LE(padded - used, used / 8) << dtype_name(dtype);
    // Layer 1 starts after layer 0's kv heads of one group.
    EXPECT_EQ(static_cast<const std::byte*>(second.keys) - static_cast<const std::byte*>(first.keys),
              3 * first.blocks_per_group * head_block_bytes);
    EXPECT_EQ(second.group_stride, first.group_stride);
    // A byte budget counts the padding: three whole groups take what bytes_per_token says, to rounding.
    const int64_t tokens = 3 * first.blocks_per_group * block_tokens;
    const int64_t budget = KvCache::bytes_per_token(smollm, dtype) * tokens;
    const KvCache three(smollm, tokens, dtype);
    EXPECT_LE(three.bytes(), budget) << dtype_name(dtype);
    EXPECT_LT(budget - three.bytes(), tokens) << dtype_name(dtype);
  }
  const KvCache tiny(small_config(), 4096);
  const PagedKvLayer layer = tiny.layer(0);
  EXPECT_EQ(layer.blocks_per_group, std::max<int64_t>(1, 256 / block_tokens));
  EXPECT_EQ(layer.group_stride, 2 * 1 * layer.blocks_per_group);
}

}  // namespace
}  // namespace jagged
