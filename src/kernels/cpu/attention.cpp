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

#include "kernels/cpu/attention_tiles.h"

namespace jagged::kernels::cpu {
namespace {
namespace hn = hwy::HWY_NAMESPACE;
using namespace attention_tiles;

constexpr int64_t kRowsTarget = 96;          // (query, head) rows per query block
constexpr int64_t kItemsPerThread = 8;       // split long sequences until the batch has this many items per thread
constexpr size_t kMaxValueVectors = 8;       // P.V covers head_dim in chunks of at most this many vectors
// Largest K row stride whose kLanes - 1 rows fit the int32 indices of a gather.
constexpr int64_t kMaxGatherStride = std::numeric_limits<int32_t>::max() / static_cast<int64_t>(kLanes);

int64_t round_up(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

// Keys of tile [key_begin, ...) when keys [0, num_keys) are packed: whole vectors, at most kKeyTile.
int64_t tile_width(int64_t num_keys, int64_t key_begin) {
  return std::min(kKeyTile, round_up(num_keys - key_begin, kLanes));
}

size_t chunk_vectors(int64_t acc_stride, int64_t column) {
  return std::min<size_t>(kMaxValueVectors, static_cast<size_t>((acc_stride - column) / kLanes));
}

// Rows are padded to a multiple of every micro-kernel's row block.
int64_t padded_row_multiple(int64_t acc_stride) {
  int64_t multiple = static_cast<int64_t>(kScoreRows);
  for (int64_t column = 0; column < acc_stride; column += kMaxValueVectors * kLanes) {
    multiple = std::lcm(multiple, static_cast<int64_t>(value_rows(chunk_vectors(acc_stride, column))));
  }
  return multiple;
}

struct Shape {
  int64_t group;              // query heads per kv head
  int64_t queries_per_block;  // queries per query block
  int64_t acc_stride;         // head_dim rounded up to whole vectors
  int64_t row_multiple;       // see padded_row_multiple

  explicit Shape(const AttentionParams& params)
      : group(params.group()),
        queries_per_block(std::max<int64_t>(1, (kRowsTarget + group - 1) / group)),
        acc_stride(round_up(params.head_dim, kLanes)),
        row_multiple(padded_row_multiple(acc_stride)) {}
  int64_t padded_rows(int64_t queries) const { return round_up(queries * group, row_multiple); }
};

struct WorkItem {
  int64_t seq = 0;
  int64_t kv_head = 0;
  int64_t query_begin = 0;
  int64_t query_end = 0;
  int64_t cost = 0;  // score pairs visited: rows x keys
};

// Per-thread buffers: one 64-byte aligned block carved into pieces, plus row bookkeeping. Allocated per call outside
// the accounting allocator, like oneDNN's GEMM scratch: a forward pass allocates no Tensor per layer.
// attention_workspace_bytes reports the size.
class Scratch {
 public:
  Scratch(int64_t max_keys, int64_t head_dim, const Shape& shape) {
    const int64_t max_rows = shape.padded_rows(shape.queries_per_block);
    const Sizes sizes = sizes_of(max_keys, head_dim, shape);
    storage_ = hwy::AllocateAligned<float>(static_cast<size_t>(total(sizes)));
    float* next = storage_.get();
    float** pieces[] = {&keys_t, &values, &scores, &acc, &row_sum};
    for (size_t i = 0; i < std::size(pieces); ++i) {
      *pieces[i] = next;
      next += round_up(sizes[i], 16);
    }
    q_rows.resize(static_cast<size_t>(max_rows));
    key_end.resize(static_cast<size_t>(max_rows));
    row_max.resize(static_cast<size_t>(max_rows));
    alpha.resize(static_cast<size_t>(max_rows));
  }

  static int64_t bytes(int64_t max_keys, int64_t head_dim, const Shape& shape) {
    const int64_t max_rows = shape.padded_rows(shape.queries_per_block);
    return total(sizes_of(max_keys, head_dim, shape)) * static_cast<int64_t>(sizeof(float)) +
           max_rows * static_cast<int64_t>(sizeof(const float*) + sizeof(int64_t) + 2 * sizeof(float));
  }

  float* keys_t = nullptr;   // K of keys [0, n): tile t at keys_t + t * kKeyTile * head_dim, [head_dim][width]
  float* values = nullptr;   // [n, acc_stride] V rows, zero past head_dim
  float* scores = nullptr;   // [rows, kKeyTile] probabilities of the current tile
  float* acc = nullptr;      // [rows, acc_stride] unnormalised output
  float* row_sum = nullptr;  // [rows, kLanes] lane-wise partial sums of probabilities
  std::vector<const float*> q_rows;  // [rows] the row's query, one head
  std::vector<int64_t> key_end;      // [rows] keys [0, key_end) are visible
  std::vector<float> row_max;        // [rows] running max of raw scores
  std::vector<float> alpha;          // [rows] rescale of acc for the current tile

 private:
  using Sizes = std::array<int64_t, 5>;  // floats of keys_t, values, scores, acc, row_sum
  static Sizes sizes_of(int64_t max_keys, int64_t head_dim, const Shape& shape) {
    const int64_t max_rows = shape.padded_rows(shape.queries_per_block);
    return {round_up(max_keys, kLanes) * head_dim, max_keys * shape.acc_stride, max_rows * kKeyTile,
            max_rows * shape.acc_stride, max_rows * static_cast<int64_t>(kLanes)};
  }
  static int64_t total(const Sizes& sizes) {
    int64_t floats = 0;
    for (const int64_t size : sizes) floats += round_up(size, 16);
    return floats;
  }

  hwy::AlignedFreeUniquePtr<float[]> storage_;
};

struct Problem {
  ConstMatrixView q, k, v;
  MatrixView out;
  std::span<const int32_t> cu_seqlens;
  AttentionParams params;
  Shape shape;
  float log2_scale;  // scale * log2(e): probabilities are exp2(score * log2_scale - max)
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
  const int64_t head_dim = problem.params.head_dim;
  const int64_t stride = problem.shape.acc_stride;
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

void score_block(size_t vectors, const float* const* q_rows, const float* keys_t, size_t keys_stride,
                 size_t head_dim, const int64_t* key_end, int64_t key_begin, float log2_scale, RowState state,
                 float* probs) {
  switch (vectors) {
    case 1:
      return score_softmax_rows<1>(q_rows, keys_t, keys_stride, head_dim, key_end, key_begin, log2_scale, state, probs);
    case 2:
      return score_softmax_rows<2>(q_rows, keys_t, keys_stride, head_dim, key_end, key_begin, log2_scale, state, probs);
    case 3:
      return score_softmax_rows<3>(q_rows, keys_t, keys_stride, head_dim, key_end, key_begin, log2_scale, state, probs);
    default:
      return score_softmax_rows<4>(q_rows, keys_t, keys_stride, head_dim, key_end, key_begin, log2_scale, state, probs);
  }
}

void value_block(size_t vectors, bool first, const float* probs, const float* alpha, const float* values,
                 size_t values_stride, size_t num_keys, float* acc, size_t acc_stride) {
  switch (vectors) {
    case 1: return accumulate_values<1>(first, probs, alpha, values, values_stride, num_keys, acc, acc_stride);
    case 2: return accumulate_values<2>(first, probs, alpha, values, values_stride, num_keys, acc, acc_stride);
    case 3: return accumulate_values<3>(first, probs, alpha, values, values_stride, num_keys, acc, acc_stride);
    case 4: return accumulate_values<4>(first, probs, alpha, values, values_stride, num_keys, acc, acc_stride);
    case 5: return accumulate_values<5>(first, probs, alpha, values, values_stride, num_keys, acc, acc_stride);
    case 6: return accumulate_values<6>(first, probs, alpha, values, values_stride, num_keys, acc, acc_stride);
    case 7: return accumulate_values<7>(first, probs, alpha, values, values_stride, num_keys, acc, acc_stride);
    default: return accumulate_values<8>(first, probs, alpha, values, values_stride, num_keys, acc, acc_stride);
  }
}

// Keys [key_begin, key_begin + kKeyTile) visible to the rows in [row, row + rows): the last row sees the most.
int64_t block_keys(const Scratch& scratch, size_t row, size_t rows, int64_t key_begin) {
  return std::clamp<int64_t>(scratch.key_end[row + rows - 1] - key_begin, 0, kKeyTile);
}

// One query block [query_begin, query_end) against the packed keys [0, num_keys).
void run_query_block(const Problem& problem, const SequenceBlock& block, int64_t kv_head, int64_t query_begin,
                     int64_t query_end, int64_t num_keys, Scratch& scratch) {
  const AttentionParams& params = problem.params;
  const Shape& shape = problem.shape;
  const int64_t head_dim = params.head_dim;
  const int64_t group = shape.group;
  const int64_t rows = (query_end - query_begin) * group;
  const int64_t padded_rows = shape.padded_rows(query_end - query_begin);
  const FloatTag d;

  for (int64_t query = query_begin, row = 0; query < query_end; ++query) {
    for (int64_t head = kv_head * group; head < (kv_head + 1) * group; ++head, ++row) {
      scratch.q_rows[row] = block.head_row(problem.q, query, head, head_dim);
      scratch.key_end[row] = block.key_end(query, params.causal);
    }
  }
  for (int64_t row = 0; row < padded_rows; ++row) {
    if (row >= rows) {  // padding rows repeat the last row; never written out
      scratch.q_rows[row] = scratch.q_rows[rows - 1];
      scratch.key_end[row] = scratch.key_end[rows - 1];
    }
    scratch.row_max[row] = -HUGE_VALF;
    hn::Store(hn::Zero(d), d, scratch.row_sum + row * kLanes);
  }

  // Tile by tile, row group by row group: Q.K^T, online softmax and P.V of a few rows reuse the K and V tiles
  // from L1 (the whole block's scores and accumulators would not fit beside them).
  const int64_t block_key_end = scratch.key_end[rows - 1];
  const int64_t row_group = shape.row_multiple;
  for (int64_t key_begin = 0; key_begin < block_key_end; key_begin += kKeyTile) {
    const float* keys_t = scratch.keys_t + key_begin * head_dim;
    const size_t width = static_cast<size_t>(tile_width(num_keys, key_begin));
    const float* values = scratch.values + key_begin * shape.acc_stride;
    for (int64_t group_begin = 0; group_begin < padded_rows; group_begin += row_group) {
      if (block_keys(scratch, static_cast<size_t>(group_begin), static_cast<size_t>(row_group), key_begin) <= 0) {
        continue;  // no row of the group sees this tile: nothing changes
      }
      // The next group's q rows into L1 while this group computes.
      for (int64_t row = group_begin + row_group; row < std::min(group_begin + 2 * row_group, padded_rows); ++row) {
        prefetch(scratch.q_rows[row], head_dim);
      }
      // S = Q . K^T (only the key vectors each row block can see) and the online softmax, to P.
      for (size_t row = static_cast<size_t>(group_begin); row < static_cast<size_t>(group_begin + row_group);
           row += kScoreRows) {
        const int64_t keys = block_keys(scratch, row, kScoreRows, key_begin);
        float* probs = scratch.scores + row * kKeyTile;
        if (keys <= 0) {  // no row here sees this tile: P = 0, nothing to rescale
          std::fill_n(probs, kScoreRows * kKeyTile, 0.0f);
          std::fill_n(scratch.alpha.data() + row, kScoreRows, 1.0f);
          continue;
        }
        score_block(static_cast<size_t>((keys + kLanes - 1) / kLanes), scratch.q_rows.data() + row, keys_t, width,
                    static_cast<size_t>(head_dim), scratch.key_end.data() + row, key_begin, problem.log2_scale,
                    {scratch.row_max.data() + row, scratch.alpha.data() + row, scratch.row_sum + row * kLanes}, probs);
      }
      // acc = alpha * acc + P . V, head_dim in chunks.
      for (int64_t column = 0; column < shape.acc_stride; column += kMaxValueVectors * kLanes) {
        const size_t vectors = chunk_vectors(shape.acc_stride, column);
        const size_t rows_per_block = value_rows(vectors);
        for (size_t row = static_cast<size_t>(group_begin); row < static_cast<size_t>(group_begin + row_group);
             row += rows_per_block) {
          const int64_t keys = block_keys(scratch, row, rows_per_block, key_begin);
          if (keys <= 0) continue;  // every row here has alpha 1 and no visible key
          value_block(vectors, key_begin == 0, scratch.scores + row * kKeyTile, scratch.alpha.data() + row,
                      values + column, static_cast<size_t>(shape.acc_stride), static_cast<size_t>(keys),
                      scratch.acc + row * shape.acc_stride + column, static_cast<size_t>(shape.acc_stride));
        }
      }
    }
  }

  const int64_t full = head_dim / kLanes * kLanes;
  const auto tail = hn::FirstN(d, static_cast<size_t>(head_dim - full));
  for (int64_t query = query_begin, row = 0; query < query_end; ++query) {
    for (int64_t head = kv_head * group; head < (kv_head + 1) * group; ++head, ++row) {
      const float sum = hn::GetLane(hn::SumOfLanes(d, hn::Load(d, scratch.row_sum + row * kLanes)));
      const FloatVec inverse = hn::Set(d, 1.0f / sum);
      const float* acc = scratch.acc + row * shape.acc_stride;
      float* out = block.head_row(problem.out, query, head, head_dim);
      for (int64_t i = 0; i < full; i += kLanes) hn::StoreU(hn::Mul(hn::Load(d, acc + i), inverse), d, out + i);
      if (full < head_dim) hn::BlendedStore(hn::Mul(hn::Load(d, acc + full), inverse), tail, d, out + full);
    }
  }
}

int64_t item_keys(const WorkItem& item, const SequenceBlock& block, bool causal) {
  return causal ? item.query_end : block.length;
}

void run_item(const WorkItem& item, const Problem& problem, Scratch& scratch) {
  const SequenceBlock block = SequenceBlock::packed(problem.cu_seqlens, item.seq);
  const int64_t num_keys = item_keys(item, block, problem.params.causal);
  pack_keys_values(problem, block, item.kv_head, num_keys, scratch);
  for (int64_t query = item.query_begin; query < item.query_end; query += problem.shape.queries_per_block) {
    const int64_t end = std::min(query + problem.shape.queries_per_block, item.query_end);
    run_query_block(problem, block, item.kv_head, query, end, num_keys, scratch);
  }
}

// Items: each (sequence, kv head) whole, or, for long sequences, split into runs of query blocks so that the batch
// has about kItemsPerThread items per thread. Sorted longest first.
std::vector<WorkItem> make_work_items(std::span<const int32_t> cu_seqlens, const AttentionParams& params,
                                      const Shape& shape, int threads) {
  const auto block_cost = [&](const SequenceBlock& block, int64_t begin, int64_t end) {
    return (end - begin) * shape.group * (params.causal ? end : block.length);
  };
  const int64_t num_seqs = static_cast<int64_t>(cu_seqlens.size()) - 1;
  int64_t total = 0;
  for (int64_t seq = 0; seq < num_seqs; ++seq) {
    const SequenceBlock block = SequenceBlock::packed(cu_seqlens, seq);
    for (int64_t begin = 0; begin < block.length; begin += shape.queries_per_block) {
      total += block_cost(block, begin, std::min(begin + shape.queries_per_block, block.length));
    }
  }
  const int64_t target = std::max<int64_t>(1, total * params.num_kv_heads / (kItemsPerThread * threads));

  std::vector<WorkItem> items;
  for (int64_t seq = 0; seq < num_seqs; ++seq) {
    const SequenceBlock block = SequenceBlock::packed(cu_seqlens, seq);
    for (int64_t kv_head = 0; kv_head < params.num_kv_heads; ++kv_head) {
      WorkItem item{seq, kv_head, 0, 0, 0};
      for (int64_t begin = 0; begin < block.length; begin += shape.queries_per_block) {
        const int64_t end = std::min(begin + shape.queries_per_block, block.length);
        const int64_t cost = block_cost(block, begin, end);
        if (item.cost > 0 && item.cost + cost > target) {
          items.push_back(item);
          item = {seq, kv_head, begin, begin, 0};
        }
        item.query_end = end;
        item.cost += cost;
      }
      if (item.cost > 0) items.push_back(item);
    }
  }
  std::stable_sort(items.begin(), items.end(), [](const WorkItem& a, const WorkItem& b) { return a.cost > b.cost; });
  return items;
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
        for (int64_t row = 0; row < shape.padded_rows(end - begin); row += static_cast<int64_t>(kScoreRows)) {
          const int64_t keys = std::clamp<int64_t>(key_end(row + kScoreRows - 1) - key_begin, 0, kKeyTile);
          pairs += static_cast<int64_t>(kScoreRows) * round_up(keys, kLanes);
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
  const Problem problem{q, k, v, out, cu_seqlens, params, shape, static_cast<float>(params.scale * 1.4426950408889634)};
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
