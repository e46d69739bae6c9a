// Fused ragged attention, FlashAttention-2 style on CPU.
// Work item = (sequence, kv head, range of query blocks). The item packs the K (transposed, tile by tile) and V
// rows it needs into per-thread buffers, so they stay in L2 while every query block of the range streams them.
// A query block's rows are its queries times the query heads sharing the kv head (GQA: each K/V tile serves the
// whole group), ordered query-major. For each key tile: scores with a register-blocked micro-kernel, the online
// softmax (running max, running sum, rescale of the output accumulator), then P.V. Nothing larger than one
// [rows, kKeyTile] score tile exists; causal blocks stop at their last query, and only the key vectors crossing
// the diagonal are masked.
// Items run longest first under dynamic scheduling. Each row's arithmetic depends only on its sequence (tiles
// start at the sequence's first key; query blocks at its first query), never on the batch or the item split:
// outputs are bit-identical whatever else shares the batch.
#include "kernels/attention.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include <hwy/aligned_allocator.h>
#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include "kernels/cpu/attention_query_block.h"

namespace jagged::kernels::cpu {
namespace {
namespace hn = hwy::HWY_NAMESPACE;
using namespace attention_block;

// Largest K row stride whose kLanes - 1 rows fit the int32 indices of a gather.
constexpr int64_t kMaxGatherStride = std::numeric_limits<int32_t>::max() / static_cast<int64_t>(kLanes);

// Keys of tile [key_begin, ...) when keys [0, num_keys) are packed: whole vectors, at most kKeyTile.
int64_t tile_width(int64_t num_keys, int64_t key_begin) {
  return std::min(kKeyTile, round_up(num_keys - key_begin, kLanes));
}

// Per-thread buffers: the packed K/V of one item and the row state, one 64-byte aligned block. Allocated per call
// outside the accounting allocator, like oneDNN's GEMM scratch: a forward pass allocates no Tensor per layer.
// attention_workspace_bytes reports the size.
class Scratch {
 public:
  Scratch(int64_t max_keys, int64_t head_dim, const Shape& shape) {
    const int64_t packed = packed_floats(max_keys, head_dim, shape);
    storage_ = hwy::AllocateAligned<float>(static_cast<size_t>(packed + RowScratch::bytes(shape) / 4));
    keys_t = storage_.get();
    values = keys_t + round_up(round_up(max_keys, kLanes) * head_dim, 16);
    rows = RowScratch::carve(reinterpret_cast<std::byte*>(storage_.get() + packed), shape);
  }

  static int64_t bytes(int64_t max_keys, int64_t head_dim, const Shape& shape) {
    return packed_floats(max_keys, head_dim, shape) * static_cast<int64_t>(sizeof(float)) + RowScratch::bytes(shape);
  }

  float* keys_t = nullptr;  // K of keys [0, n): tile t at keys_t + t * kKeyTile * head_dim, [head_dim][width]
  float* values = nullptr;  // [n, acc_stride] V rows, zero past head_dim
  RowScratch rows;

 private:
  static int64_t packed_floats(int64_t max_keys, int64_t head_dim, const Shape& shape) {
    return round_up(round_up(max_keys, kLanes) * head_dim, 16) + round_up(max_keys * shape.acc_stride, 16);
  }

  hwy::AlignedFreeUniquePtr<float[]> storage_;
};

struct Problem {
  ConstMatrixView k, v;
  std::span<const int32_t> cu_seqlens;
  QueryBlockProblem block;
};

// Starts loading a run of floats into the cache, one prefetch per 64-byte line.
void prefetch(const float* begin, int64_t count) {
  for (int64_t i = 0; i < count; i += 16) hwy::Prefetch(begin + i);
}

// K of keys [0, num_keys) transposed tile by tile ([head_dim][width], zero past num_keys), gathering kLanes keys
// per store; V rows copied to [num_keys][acc_stride], zero past head_dim. Works through kLanes keys at a time,
// prefetching the next kLanes rows of K and V.
void pack_keys_values(const Problem& problem, const SequenceBlock& block, int64_t kv_head, int64_t num_keys,
                      Scratch& scratch) {
  const FloatTag d;
  const hn::RebindToSigned<FloatTag> di;
  const int64_t head_dim = problem.block.params.head_dim;
  const int64_t stride = problem.block.shape.acc_stride;
  for (int64_t key = 0; key < std::min<int64_t>(kLanes, num_keys); ++key) {
    prefetch(block.head_row(problem.k, key, kv_head, head_dim), head_dim);
    prefetch(block.head_row(problem.v, key, kv_head, head_dim), head_dim);
  }
  for (int64_t first = 0; first < num_keys; first += kLanes) {
    const int64_t valid = std::min<int64_t>(kLanes, num_keys - first);
    for (int64_t key = first + kLanes; key < std::min<int64_t>(first + 2 * kLanes, num_keys); ++key) {
      prefetch(block.head_row(problem.k, key, kv_head, head_dim), head_dim);
      prefetch(block.head_row(problem.v, key, kv_head, head_dim), head_dim);
    }
    // K: tile [first / kKeyTile], columns [first % kKeyTile, + kLanes). Lanes past the last key re-read it and
    // are zeroed.
    const int64_t key_begin = first / kKeyTile * kKeyTile;
    const int64_t width = tile_width(num_keys, key_begin);
    float* tile_t = scratch.keys_t + key_begin * head_dim + (first - key_begin);
    const float* keys = block.head_row(problem.k, first, kv_head, head_dim);
    if (problem.k.row_stride <= kMaxGatherStride) {
      const auto rows = hn::Min(hn::Iota(di, 0), hn::Set(di, static_cast<int32_t>(valid - 1)));
      const auto offsets = hn::Mul(rows, hn::Set(di, static_cast<int32_t>(problem.k.row_stride)));
      const auto in_range = hn::FirstN(d, static_cast<size_t>(valid));
      for (int64_t c = 0; c < head_dim; ++c) {
        hn::Store(hn::IfThenElseZero(in_range, hn::GatherIndex(d, keys + c, offsets)), d, tile_t + c * width);
      }
    } else {  // offsets beyond int32 gather indices
      for (int64_t j = 0; j < static_cast<int64_t>(kLanes); ++j) {
        for (int64_t c = 0; c < head_dim; ++c) tile_t[c * width + j] = j < valid ? keys[j * problem.k.row_stride + c] : 0.0f;
      }
    }
    // V.
    for (int64_t key = first; key < first + valid; ++key) {
      const float* value = block.head_row(problem.v, key, kv_head, head_dim);
      std::copy_n(value, head_dim, scratch.values + key * stride);
      std::fill(scratch.values + key * stride + head_dim, scratch.values + (key + 1) * stride, 0.0f);
    }
  }
}

int64_t item_keys(const WorkItem& item, const SequenceBlock& block, bool causal) {
  return causal ? item.query_end : block.length;
}

void run_item(const WorkItem& item, const Problem& problem, Scratch& scratch) {
  const SequenceBlock block = SequenceBlock::packed(problem.cu_seqlens, item.seq);
  const int64_t num_keys = item_keys(item, block, problem.block.params.causal);
  pack_keys_values(problem, block, item.kv_head, num_keys, scratch);
  const int64_t head_dim = problem.block.params.head_dim;
  const int64_t acc_stride = problem.block.shape.acc_stride;
  const auto tile_at = [&](int64_t key_begin) {
    return KeyTile<float>{scratch.keys_t + key_begin * head_dim,
                          static_cast<size_t>(tile_width(num_keys, key_begin)), scratch.values + key_begin * acc_stride};
  };
  const int64_t queries_per_block = problem.block.shape.queries_per_block;
  for (int64_t query = item.query_begin; query < item.query_end; query += queries_per_block) {
    const int64_t end = std::min(query + queries_per_block, item.query_end);
    run_query_block(problem.block, block, item.kv_head, query, end, tile_at, scratch.rows);
  }
}

std::vector<WorkItem> make_work_items(std::span<const int32_t> cu_seqlens, const AttentionParams& params,
                                      const Shape& shape, int threads) {
  const int64_t num_seqs = static_cast<int64_t>(cu_seqlens.size()) - 1;
  return attention_block::make_work_items(
      num_seqs, [&](int64_t seq) { return SequenceBlock::packed(cu_seqlens, seq); }, params, shape, threads);
}

int64_t max_item_keys(std::span<const WorkItem> items, std::span<const int32_t> cu_seqlens,
                      const AttentionParams& params) {
  int64_t max_keys = 0;
  for (const WorkItem& item : items) {
    max_keys = std::max(max_keys, item_keys(item, SequenceBlock::packed(cu_seqlens, item.seq), params.causal));
  }
  return max_keys;
}

}  // namespace

int64_t attention_workspace_bytes(std::span<const int32_t> cu_seqlens, const AttentionParams& params) {
  const Shape shape(params);
  const int threads = omp_get_max_threads();
  const std::vector<WorkItem> items = make_work_items(cu_seqlens, params, shape, threads);
  if (items.empty()) return 0;
  return threads * Scratch::bytes(max_item_keys(items, cu_seqlens, params), params.head_dim, shape);
}

int64_t attention_score_pairs(std::span<const int32_t> cu_seqlens, const AttentionParams& params) {
  const Shape shape(params);
  int64_t pairs = 0;
  for (int64_t seq = 0; seq + 1 < static_cast<int64_t>(cu_seqlens.size()); ++seq) {
    const SequenceBlock block = SequenceBlock::packed(cu_seqlens, seq);
    for (int64_t begin = 0; begin < block.length; begin += shape.queries_per_block) {
      const int64_t end = std::min(begin + shape.queries_per_block, block.length);
      const int64_t rows = (end - begin) * shape.group;
      const auto key_end = [&](int64_t row) {
        return block.key_end(begin + std::min(row, rows - 1) / shape.group, params.causal);
      };
      for (int64_t key_begin = 0; key_begin < key_end(rows - 1); key_begin += kKeyTile) {
        const int64_t padded = shape.padded_rows(end - begin);
        const auto score_rows = static_cast<int64_t>(padded == static_cast<int64_t>(kSmallRows) ? kSmallRows : kScoreRows);
        for (int64_t row = 0; row < padded; row += score_rows) {
          const int64_t keys = std::clamp<int64_t>(key_end(row + score_rows - 1) - key_begin, 0, kKeyTile);
          pairs += score_rows * round_up(keys, kLanes);
        }
      }
    }
  }
  return pairs * params.num_kv_heads;
}

void attention(ConstMatrixView q, ConstMatrixView k, ConstMatrixView v, MatrixView out,
               std::span<const int32_t> cu_seqlens, const AttentionParams& params) {
  const Shape shape(params);
  const int threads = omp_get_max_threads();
  const std::vector<WorkItem> items = make_work_items(cu_seqlens, params, shape, threads);
  if (items.empty()) return;
  const int64_t max_keys = max_item_keys(items, cu_seqlens, params);
  const Problem problem{k, v, cu_seqlens, {q, out, params, shape, static_cast<float>(params.scale * 1.4426950408889634)}};
  std::vector<Scratch> scratch;
  scratch.reserve(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) scratch.emplace_back(max_keys, params.head_dim, shape);

  const int64_t count = static_cast<int64_t>(items.size());
#pragma omp parallel
  {
    Scratch& mine = scratch[static_cast<size_t>(omp_get_thread_num())];
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < count; ++i) run_item(items[i], problem, mine);
  }
}

}  // namespace jagged::kernels::cpu
