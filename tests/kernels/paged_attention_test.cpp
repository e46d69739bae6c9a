// Attention over the paged KV cache against the naive reference, and bit for bit against the packed kernel over
// whole sequences, on ragged (context, new) pairs: context 0, one new token, partly filled blocks, contexts longer
// than any tile, blocks scattered through the cache.
#include <gtest/gtest.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "jagged/ops.h"
#include "kernels/attention.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

struct Pair {
  int32_t context;
  int32_t fresh;
};

// dtype: the cache's element type. With bf16, K and V are rounded to bf16 first (the cache's rounding then changes
// nothing), and the paged kernel must still equal the packed f32 kernel on those values bit for bit: widening is
// exact and the arithmetic is the same. blocks_per_group: 0, the layer alone; else the middle of three layers whose
// blocks come in groups (as jagged::KvCache lays them out), every byte not written holding a stale value.
void check_paged(int num_heads, int num_kv_heads, int head_dim, const std::vector<Pair>& pairs,
                 DType dtype = DType::f32, int64_t blocks_per_group = 0) {
  const ops::AttentionConfig config{num_heads, num_kv_heads, head_dim, 0.0f, true};
  const kernels::AttentionParams params{num_heads, num_kv_heads, head_dim, 1.0f / std::sqrt(float(head_dim)), true};
  const int64_t block_tokens = ops::kv_block_tokens();
  std::vector<int32_t> full_cu{0}, context_cu{0}, fresh_cu{0}, contexts, zeros, offsets{0}, tables;
  for (const Pair& p : pairs) {
    full_cu.push_back(full_cu.back() + p.context + p.fresh);
    context_cu.push_back(context_cu.back() + p.context);
    fresh_cu.push_back(fresh_cu.back() + p.fresh);
    contexts.push_back(p.context);
    zeros.push_back(0);
    const int64_t blocks = (p.context + p.fresh + block_tokens - 1) / block_tokens;
    offsets.push_back(offsets.back() + static_cast<int32_t>(blocks));
  }
  const int64_t num_blocks = offsets.back() + 3;
  tables.resize(static_cast<size_t>(offsets.back()));
  std::vector<int32_t> ids(static_cast<size_t>(num_blocks));
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), std::mt19937(5));  // scattered blocks
  std::copy_n(ids.begin(), tables.size(), tables.begin());

  const int64_t total = full_cu.back();
  const int64_t q_dim = int64_t{num_heads} * head_dim, kv_dim = int64_t{num_kv_heads} * head_dim;
  const Tensor q = testing::random_tensor({total, q_dim}, 1);
  Tensor k = testing::random_tensor({total, kv_dim}, 2);
  Tensor v = testing::random_tensor({total, kv_dim}, 3);
  if (dtype == DType::bf16) {
    for (Tensor* t : {&k, &v}) {
      for (int64_t i = 0; i < t->numel(); ++i) t->data<float>()[i] = bf16_to_f32(f32_to_bf16(t->data<float>()[i]));
    }
  }
  // Split every sequence's rows into its context part and its new part.
  Tensor k_context({context_cu.back(), kv_dim}), v_context({context_cu.back(), kv_dim});
  Tensor q_fresh({fresh_cu.back(), q_dim}), k_fresh({fresh_cu.back(), kv_dim}), v_fresh({fresh_cu.back(), kv_dim});
  for (size_t s = 0; s < pairs.size(); ++s) {
    const auto copy = [](const Tensor& from, int64_t row, Tensor& to, int64_t to_row, int64_t rows, int64_t cols) {
      std::memcpy(to.data<float>() + to_row * cols, from.data<float>() + row * cols, rows * cols * sizeof(float));
    };
    copy(k, full_cu[s], k_context, context_cu[s], pairs[s].context, kv_dim);
    copy(v, full_cu[s], v_context, context_cu[s], pairs[s].context, kv_dim);
    copy(q, full_cu[s] + pairs[s].context, q_fresh, fresh_cu[s], pairs[s].fresh, q_dim);
    copy(k, full_cu[s] + pairs[s].context, k_fresh, fresh_cu[s], pairs[s].fresh, kv_dim);
    copy(v, full_cu[s] + pairs[s].context, v_fresh, fresh_cu[s], pairs[s].fresh, kv_dim);
  }
  const int64_t layers = blocks_per_group > 0 ? 3 : 1;
  const int64_t group_blocks = blocks_per_group > 0 ? blocks_per_group : num_blocks;
  const int64_t group_stride = layers * num_kv_heads * group_blocks;  // in head blocks
  const int64_t head_blocks = (num_blocks + group_blocks - 1) / group_blocks * group_stride;
  const int64_t key_block = head_dim * block_tokens, value_block = block_tokens * ops::kv_value_stride(head_dim);
  Tensor keys = Tensor::zeros({head_blocks * key_block}, dtype);
  Tensor values = Tensor::zeros({head_blocks * value_block}, dtype);
  if (blocks_per_group > 0) {
    std::memset(keys.raw_data(), 0x3c, keys.nbytes());
    std::memset(values.raw_data(), 0x3c, values.nbytes());
  }
  const int64_t layer_begin = blocks_per_group > 0 ? num_kv_heads * group_blocks : 0;  // layer 1, in head blocks
  const size_t element = dtype_size(dtype);
  const PagedKvLayer layer{static_cast<std::byte*>(keys.raw_data()) + layer_begin * key_block * element,
                           static_cast<std::byte*>(values.raw_data()) + layer_begin * value_block * element, dtype,
                           blocks_per_group, group_stride};
  // Two calls, as a cache fills: the context first, then the new tokens.
  ops::paged_kv_write(k_context.matrix(), v_context.matrix(), {context_cu, zeros, tables, offsets, num_blocks}, layer,
                      config);
  const PagedKvBatch batch{fresh_cu, contexts, tables, offsets, num_blocks};
  ops::paged_kv_write(k_fresh.matrix(), v_fresh.matrix(), batch, layer, config);
  Tensor workspace({ops::paged_attention_workspace_bytes(config, omp_get_max_threads())}, DType::u8);
  Tensor out({fresh_cu.back(), q_dim});
  ops::paged_attention(q_fresh.matrix(), out.matrix(), batch, layer, config,
                       {static_cast<std::byte*>(workspace.raw_data()), workspace.nbytes()});

  Tensor expected({fresh_cu.back(), q_dim});
  kernels::reference::attention_with_context(q_fresh.matrix(), k.matrix(), v.matrix(), expected.matrix(), fresh_cu,
                                             full_cu, contexts, params);
  EXPECT_LT(testing::max_abs_diff(out.data<float>(), expected.data<float>(), out.numel()), 2e-5);
  Tensor packed({total, q_dim});
  ops::attention(q.matrix(), k.matrix(), v.matrix(), packed.matrix(), full_cu, config);
  for (size_t s = 0; s < pairs.size(); ++s) {
    EXPECT_EQ(0, std::memcmp(out.data<float>() + fresh_cu[s] * q_dim,
                             packed.data<float>() + (full_cu[s] + pairs[s].context) * q_dim,
                             pairs[s].fresh * q_dim * sizeof(float)))
        << "sequence " << s << " (context " << pairs[s].context << ", new " << pairs[s].fresh
        << "): paged and packed kernels differ in bits";
  }
}

const std::vector<Pair> kPairs{{0, 1}, {0, 5}, {1, 1}, {0, 0}, {63, 1}, {64, 1}, {65, 3}, {130, 70}, {200, 1}, {7, 150}};

TEST(PagedAttention, MhaMatchesReferenceAndPackedKernel) { check_paged(4, 4, 16, kPairs); }
TEST(PagedAttention, GqaMatchesReferenceAndPackedKernel) { check_paged(9, 3, 64, kPairs); }
TEST(PagedAttention, MqaSmallHeadMatchesReferenceAndPackedKernel) { check_paged(8, 1, 8, kPairs); }
TEST(PagedAttention, OneSequence) { check_paged(2, 1, 32, {{300, 1}}); }
TEST(PagedAttention, Bf16CacheGqaMatchesPackedKernelOnRoundedKeys) { check_paged(9, 3, 64, kPairs, DType::bf16); }
TEST(PagedAttention, Bf16CacheMhaSmallHead) { check_paged(4, 4, 16, kPairs, DType::bf16); }
TEST(PagedAttention, Bf16CacheMqaSmallHead) { check_paged(8, 1, 8, kPairs, DType::bf16); }
// Blocks in groups of 1, 2 and 4 among other layers' blocks: a sequence's tiles cross groups.
TEST(PagedAttention, GroupedCacheLayoutGqa) {
  for (int64_t group : {1, 2, 4}) check_paged(9, 3, 64, kPairs, DType::f32, group);
}
TEST(PagedAttention, GroupedCacheLayoutBf16Mha) { check_paged(4, 4, 16, kPairs, DType::bf16, 2); }

// Where each key lands in a grouped cache, from the layout PagedKvLayer documents: block b, kv head h of the
// second of three layers is head block (b / 2) * 12 + 4 + h * 2 + b % 2 (groups of 2 blocks, 2 kv heads).
TEST(PagedAttention, GroupedLayoutPutsEachHeadBlockWhereDocumented) {
  const int64_t head_dim = 16, block_tokens = ops::kv_block_tokens(), key_block = head_dim * block_tokens;
  const ops::AttentionConfig config{2, 2, head_dim, 0.0f, true};
  const int64_t num_blocks = 5, tokens = num_blocks * block_tokens;
  Tensor keys = Tensor::zeros({3 * 12 * key_block});
  Tensor values = Tensor::zeros({3 * 12 * block_tokens * ops::kv_value_stride(head_dim)});
  const Tensor k = testing::random_tensor({tokens, 2 * head_dim}, 8);
  const Tensor v = testing::random_tensor({tokens, 2 * head_dim}, 9);
  const std::vector<int32_t> cu{0, static_cast<int32_t>(tokens)}, context{0}, table{4, 0, 3, 1, 2}, offsets{0, 5};
  const PagedKvLayer layer{keys.data<float>() + 4 * key_block,
                           values.data<float>() + 4 * block_tokens * ops::kv_value_stride(head_dim), DType::f32, 2,
                           12};
  ops::paged_kv_write(k.matrix(), v.matrix(), {cu, context, table, offsets, num_blocks}, layer, config);
  for (int64_t p = 0; p < tokens; ++p) {
    const int64_t block = table[static_cast<size_t>(p / block_tokens)], slot = p % block_tokens;
    for (int64_t h = 0; h < 2; ++h) {
      const int64_t head_block = block / 2 * 12 + 4 + h * 2 + block % 2;
      for (int64_t c = 0; c < head_dim; ++c) {
        ASSERT_EQ(keys.data<float>()[head_block * key_block + c * block_tokens + slot],
                  k.data<float>()[p * 2 * head_dim + h * head_dim + c])
            << "token " << p << " head " << h;
      }
    }
  }
}

TEST(PagedAttention, RejectsOverlappingGroups) {
  const ops::AttentionConfig config{2, 2, 16, 0.0f, true};
  Tensor keys = Tensor::zeros({4 * 16 * ops::kv_block_tokens()});
  Tensor values = Tensor::zeros({4 * ops::kv_block_tokens() * ops::kv_value_stride(16)});
  Tensor k({1, 32}), v({1, 32});
  const std::vector<int32_t> cu{0, 1}, context{0}, table{0}, offsets{0, 1};
  const PagedKvBatch batch{cu, context, table, offsets, 2};
  // Two kv heads of groups of 2 blocks take 4 head blocks: a stride of 3 would overlap the next group.
  EXPECT_THROW(ops::paged_kv_write(k.matrix(), v.matrix(), batch,
                                   {keys.raw_data(), values.raw_data(), DType::f32, 2, 3}, config),
               InvalidArgument);
  EXPECT_NO_THROW(ops::paged_kv_write(k.matrix(), v.matrix(), batch,
                                      {keys.raw_data(), values.raw_data(), DType::f32, 2, 4}, config));
}

// The cache keeps each key and value rounded to nearest even, read back widened: the stored bits are exactly
// f32_to_bf16 of the input.
TEST(PagedAttention, Bf16CacheStoresRoundedValues) {
  const ops::AttentionConfig config{1, 1, 16, 0.0f, true};
  const int64_t block_tokens = ops::kv_block_tokens();
  Tensor keys = Tensor::zeros({16 * block_tokens}, DType::bf16);
  Tensor values = Tensor::zeros({block_tokens * ops::kv_value_stride(16)}, DType::bf16);
  Tensor k = testing::random_tensor({2, 16}, 4), v = testing::random_tensor({2, 16}, 5);
  const std::vector<int32_t> cu{0, 2}, context{0}, table{0}, offsets{0, 1};
  ops::paged_kv_write(k.matrix(), v.matrix(), {cu, context, table, offsets, 1},
                      {keys.raw_data(), values.raw_data(), DType::bf16}, config);
  const auto* stored_keys = static_cast<const uint16_t*>(keys.raw_data());
  const auto* stored_values = static_cast<const uint16_t*>(values.raw_data());
  for (int64_t token = 0; token < 2; ++token) {
    for (int64_t c = 0; c < 16; ++c) {
      EXPECT_EQ(stored_keys[c * block_tokens + token], f32_to_bf16(k.data<float>()[token * 16 + c]));
      EXPECT_EQ(stored_values[token * ops::kv_value_stride(16) + c], f32_to_bf16(v.data<float>()[token * 16 + c]));
    }
  }
}

TEST(PagedAttention, RejectsCacheTypesItCannotHold) {
  const ops::AttentionConfig config{2, 1, 16, 0.0f, true};
  Tensor keys = Tensor::zeros({16 * ops::kv_block_tokens()});
  Tensor values = Tensor::zeros({ops::kv_block_tokens() * ops::kv_value_stride(16)});
  Tensor q({1, 32}), out({1, 32}), k({1, 16}), v({1, 16});
  const std::vector<int32_t> cu{0, 1}, context{0}, table{0}, offsets{0, 1};
  const PagedKvBatch batch{cu, context, table, offsets, 1};
  const PagedKvLayer layer{keys.raw_data(), values.raw_data(), DType::q8_0};
  EXPECT_THROW(ops::paged_kv_write(k.matrix(), v.matrix(), batch, layer, config), InvalidArgument);
  Tensor workspace({ops::paged_attention_workspace_bytes(config, omp_get_max_threads())}, DType::u8);
  EXPECT_THROW(ops::paged_attention(q.matrix(), out.matrix(), batch, layer, config,
                                    {static_cast<std::byte*>(workspace.raw_data()), workspace.nbytes()}),
               InvalidArgument);
  EXPECT_EQ(parse_kv_dtype("bf16"), DType::bf16);
  EXPECT_EQ(parse_kv_dtype("f32"), DType::f32);
  EXPECT_THROW(parse_kv_dtype("f16"), InvalidArgument);
}

TEST(PagedAttention, RejectsShortBlockTables) {
  const ops::AttentionConfig config{2, 1, 16, 0.0f, true};
  Tensor keys = Tensor::zeros({1 * 16 * ops::kv_block_tokens()});
  Tensor values = Tensor::zeros({ops::kv_block_tokens() * ops::kv_value_stride(16)});
  Tensor k({2, 16}), v({2, 16});
  const std::vector<int32_t> cu{0, 2}, context{static_cast<int32_t>(ops::kv_block_tokens() - 1)}, table{0}, offsets{0, 1};
  EXPECT_THROW(ops::paged_kv_write(k.matrix(), v.matrix(), {cu, context, table, offsets, 1},
                                   {keys.raw_data(), values.raw_data()}, config),
               InvalidArgument);
  const std::vector<int32_t> bad_table{5};
  const std::vector<int32_t> zero{0};
  EXPECT_THROW(ops::paged_kv_write(k.matrix(), v.matrix(), {cu, zero, bad_table, offsets, 1},
                                   {keys.raw_data(), values.raw_data()}, config),
               InvalidArgument);
}

}  // namespace
}  // namespace jagged
