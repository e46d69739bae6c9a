// Fused attention over a paged KV cache. The cache's blocks are the kernel's key tiles, already in the layout the
// micro-kernels read (K transposed, V rows padded to whole vectors), so nothing is packed per call: a decode row
// streams its sequence's blocks once. Queries are grouped and processed exactly as in attention.cpp
// (attention_query_block.h), with key tiles at the same absolute positions: a row's result is bit-identical to
// the packed kernel over the whole sequence.
#include <omp.h>

#include <algorithm>
#include <type_traits>
#include <utility>

#include "jagged/dtype.h"
#include "jagged/error.h"
#include "kernels/attention.h"
#include "kernels/cpu/attention_query_block.h"

namespace jagged::kernels::cpu {
namespace {
using namespace attention_block;

int64_t block_elements(const AttentionParams& params) { return params.head_dim * kv_block_tokens(); }

template <typename T>
T cache_element(float value) {
  if constexpr (std::is_same_v<T, float>) {
    return value;
  } else {
    return hwy::bfloat16_t{f32_to_bf16(value)};  // nearest even, as the cache keeps it
  }
}

template <typename T>
void write_blocks(ConstMatrixView k, ConstMatrixView v, const PagedKvBatch& batch, const PagedKvLayer& layer,
                  const AttentionParams& params) {
  const int64_t block_tokens = kv_block_tokens();
  const int64_t head_dim = params.head_dim;
  const int64_t value_stride = kv_value_stride(head_dim);
  const int64_t key_block = block_elements(params);
  const int64_t value_block = block_tokens * value_stride;
  const int64_t num_seqs = static_cast<int64_t>(batch.cu_seqlens.size()) - 1;
  auto* const cache_keys = static_cast<T*>(layer.keys);
  auto* const cache_values = static_cast<T*>(layer.values);
  // A key row scatters over head_dim cache lines (K is stored transposed): many rows share the threads, but one
  // sequence's decode row costs less than the ~3 us an OpenMP fork and join takes on these VMs.
  const int64_t tokens = num_seqs > 0 ? int64_t{batch.cu_seqlens.back()} : 0;
#pragma omp parallel for schedule(static) if (num_seqs > 1 && tokens * params.num_kv_heads >= 32)
  for (int64_t seq = 0; seq < num_seqs; ++seq) {
    const SequenceBlock block = paged_sequence(batch, seq);
    const int32_t* table = batch.block_tables.data() + batch.block_table_offsets[seq];
    // Row i's cache block and its slot in it.
    const auto place = [&](int64_t i) {
      const int64_t position = block.key_offset + i;
      return std::pair<int64_t, int64_t>{table[position / block_tokens], position % block_tokens};
    };
    // Ask for every line the sequence's keys go to before writing any: the writes then wait for the memory
    // system once per sequence, not once per line.
    for (int64_t i = 0; i < block.length; ++i) {
      const auto [cache_block, slot] = place(i);
      for (int64_t kv_head = 0; kv_head < params.num_kv_heads; ++kv_head) {
        const T* keys_t = cache_keys + kv_head_block(layer, batch.num_blocks, cache_block, kv_head) * key_block + slot;
        for (int64_t c = 0; c < head_dim; ++c) __builtin_prefetch(keys_t + c * block_tokens, 1);
      }
    }
    for (int64_t i = 0; i < block.length; ++i) {
      const auto [cache_block, slot] = place(i);
      for (int64_t kv_head = 0; kv_head < params.num_kv_heads; ++kv_head) {
        const int64_t base = kv_head_block(layer, batch.num_blocks, cache_block, kv_head);
        const float* key = block.head_row(k, i, kv_head, head_dim);
        T* keys_t = cache_keys + base * key_block + slot;
        for (int64_t c = 0; c < head_dim; ++c) keys_t[c * block_tokens] = cache_element<T>(key[c]);
        const float* value = block.head_row(v, i, kv_head, head_dim);
        T* values = cache_values + base * value_block + slot * value_stride;
        for (int64_t c = 0; c < head_dim; ++c) values[c] = cache_element<T>(value[c]);
        std::fill(values + head_dim, values + value_stride, cache_element<T>(0.0f));
      }
    }
  }
}

template <typename T>
void attend_blocks(ConstMatrixView q, MatrixView out, const PagedKvBatch& batch, const PagedKvLayer& layer,
                   const AttentionParams& params, std::span<std::byte> workspace) {
  const Shape shape(params);
  const int64_t per_thread = RowScratch::bytes(shape);
  const int threads = omp_get_max_threads();
  const int64_t num_seqs = static_cast<int64_t>(batch.cu_seqlens.size()) - 1;
  const std::vector<WorkItem> items =
      make_work_items(num_seqs, [&](int64_t seq) { return paged_sequence(batch, seq); }, params, shape, threads);
  if (items.empty()) return;
  const QueryBlockProblem problem{q, out, params, shape, static_cast<float>(params.scale * 1.4426950408889634)};
  const int64_t block_tokens = kv_block_tokens();
  const int64_t key_block = block_elements(params);
  const int64_t value_block = block_tokens * shape.acc_stride;
  const int64_t count = static_cast<int64_t>(items.size());
  const auto* const cache_keys = static_cast<const T*>(layer.keys);
  const auto* const cache_values = static_cast<const T*>(layer.values);
  const auto tile_of = [&](const WorkItem& item, int64_t key_begin) {
    const int32_t* table = batch.block_tables.data() + batch.block_table_offsets[item.seq];
    const int64_t base = kv_head_block(layer, batch.num_blocks, table[key_begin / block_tokens], item.kv_head);
    return KeyTile<T>{cache_keys + base * key_block, static_cast<size_t>(block_tokens),
                      cache_values + base * value_block};
  };
#pragma omp parallel
  {
    RowScratch scratch = RowScratch::carve(workspace.data() + omp_get_thread_num() * per_thread, shape);
    // Items in a fixed round robin, so that a thread knows the item it runs next and its first tile is on its way
    // while this item's last tile computes: a decode item is only a few tiles, anywhere in the cache.
    const int64_t team = omp_get_num_threads();
#pragma omp for schedule(static, 1)
    for (int64_t i = 0; i < count; ++i) {
      const WorkItem& item = items[static_cast<size_t>(i)];
      const SequenceBlock block = paged_sequence(batch, item.seq);
      const int64_t item_keys = block.key_end(item.query_end - 1, params.causal);
      const auto tile_at = [&](int64_t key_begin) {
        KeyTile<T> tile = tile_of(item, key_begin);
        const KeyTile<T> next = key_begin + block_tokens < item_keys ? tile_of(item, key_begin + block_tokens)
                                : i + team < count ? tile_of(items[static_cast<size_t>(i + team)], 0)
                                                   : KeyTile<T>{nullptr, 0, nullptr};
        tile.next_keys_t = next.keys_t;
        tile.next_values = next.values;
        return tile;
      };
      for (int64_t query = item.query_begin; query < item.query_end; query += shape.queries_per_block) {
        const int64_t end = std::min(query + shape.queries_per_block, item.query_end);
        run_query_block(problem, block, item.kv_head, query, end, tile_at, scratch);
      }
    }
  }
}

}  // namespace

int64_t kv_block_tokens() { return kKeyTile; }

int64_t kv_value_stride(int64_t head_dim) { return round_up(head_dim, static_cast<int64_t>(kLanes)); }

void paged_kv_write(ConstMatrixView k, ConstMatrixView v, const PagedKvBatch& batch, const PagedKvLayer& layer,
                    const AttentionParams& params) {
  if (layer.dtype == DType::bf16) return write_blocks<hwy::bfloat16_t>(k, v, batch, layer, params);
  write_blocks<float>(k, v, batch, layer, params);
}

int64_t paged_attention_workspace_bytes(const AttentionParams& params, int threads) {
  return static_cast<int64_t>(threads) * RowScratch::bytes(Shape(params));
}

void paged_attention(ConstMatrixView q, MatrixView out, const PagedKvBatch& batch, const PagedKvLayer& layer,
                     const AttentionParams& params, std::span<std::byte> workspace) {
  const int threads = omp_get_max_threads();
  const int64_t per_thread = RowScratch::bytes(Shape(params));
  if (static_cast<int64_t>(workspace.size()) < threads * per_thread) {
    throw InvalidArgument(concat("paged_attention: workspace of ", workspace.size(), " bytes, need ",
                                 threads * per_thread, " for ", threads, " threads"));
  }
  if (layer.dtype == DType::bf16) return attend_blocks<hwy::bfloat16_t>(q, out, batch, layer, params, workspace);
  attend_blocks<float>(q, out, batch, layer, params, workspace);
}

}  // namespace jagged::kernels::cpu
