// One query block of the fused attention kernel, shared by the packed kernel (attention.cpp: K/V of a sequence
// packed into per-thread tiles) and the paged one (attention_paged.cpp: K/V read in place from KV cache blocks).
// Both hand run_query_block the key tiles at the same absolute key positions (0, kKeyTile, 2 kKeyTile, ...), so a
// query's arithmetic is the same in both and depends on nothing but its own sequence.
// Internal to src/kernels/cpu.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <vector>

#include "kernels/attention.h"
#include "kernels/cpu/attention_tiles.h"

namespace jagged::kernels::cpu::attention_block {
using namespace attention_tiles;

inline constexpr int64_t kRowsTarget = 96;      // (query, head) rows per query block
inline constexpr size_t kMaxValueVectors = 8;   // P.V covers head_dim in chunks of at most this many vectors

inline int64_t round_up(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

inline size_t chunk_vectors(int64_t acc_stride, int64_t column) {
  return std::min<size_t>(kMaxValueVectors, static_cast<size_t>((acc_stride - column) / kLanes));
}

// Rows are padded to a multiple of every micro-kernel's row block.
inline int64_t padded_row_multiple(int64_t acc_stride) {
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
  // A block of at most kSmallRows rows runs the narrow micro-kernels; larger ones whole row blocks.
  int64_t padded_rows(int64_t queries) const {
    const int64_t rows = queries * group;
    return rows <= static_cast<int64_t>(kSmallRows) ? static_cast<int64_t>(kSmallRows) : round_up(rows, row_multiple);
  }
  int64_t max_rows() const { return padded_rows(queries_per_block); }
};

// Per-thread row state of one query block, carved from caller memory (64-byte aligned pieces).
struct RowScratch {
  float* scores = nullptr;           // [rows, kKeyTile] probabilities of the current tile
  float* acc = nullptr;              // [rows, acc_stride] unnormalised output
  float* row_sum = nullptr;          // [rows, kLanes] lane-wise partial sums of probabilities
  float* row_max = nullptr;          // [rows] running max of raw scores
  float* alpha = nullptr;            // [rows] rescale of acc for the current tile
  int64_t* key_end = nullptr;        // [rows] keys [0, key_end) are visible
  const float** q_rows = nullptr;    // [rows] the row's query, one head

  static int64_t bytes(const Shape& shape);
  // memory: bytes(shape) bytes, 64-byte aligned.
  static RowScratch carve(std::byte* memory, const Shape& shape);
};

// Where the keys [key_begin, key_begin + kKeyTile) of a sequence are: K transposed [head_dim][keys_stride] (keys
// along the row), V rows [.][acc_stride] (zeros past head_dim).
// next_keys_t / next_values (or nullptr): the full tile of the same strides read after this one, which the
// micro-kernels ask into the caches while they compute on this one.
// T: the element type, f32 (packed tiles, f32 caches) or bf16 (bf16 caches).
template <typename T = float>
struct KeyTile {
  const T* keys_t;
  size_t keys_stride;
  const T* values;
  const T* next_keys_t = nullptr;
  const T* next_values = nullptr;
};

struct QueryBlockProblem {
  ConstMatrixView q;
  MatrixView out;
  AttentionParams params;
  Shape shape;
  float log2_scale;  // scale * log2(e): probabilities are exp2(score * log2_scale - max)
};

// Sets up the rows of queries [query_begin, query_end) of one kv head's group; returns the keys the block sees.
int64_t prepare_rows(const QueryBlockProblem& problem, const SequenceBlock& block, int64_t kv_head,
                     int64_t query_begin, int64_t query_end, RowScratch& scratch);
// The FlashAttention step of every row group over one key tile (instantiated for float and hwy::bfloat16_t).
template <typename T>
void process_tile(const QueryBlockProblem& problem, int64_t padded_rows, int64_t key_begin, const KeyTile<T>& tile,
                  RowScratch& scratch);
// Normalises and stores the block's outputs.
void store_rows(const QueryBlockProblem& problem, const SequenceBlock& block, int64_t kv_head, int64_t query_begin,
                int64_t query_end, const RowScratch& scratch);

struct WorkItem {
  int64_t seq = 0;
  int64_t kv_head = 0;
  int64_t query_begin = 0;
  int64_t query_end = 0;
  int64_t cost = 0;  // score pairs visited: rows x keys
};

// Items: each (sequence, kv head) whole, or, for long sequences, split into runs of query blocks so that the batch
// has about 8 items per thread; longest first. The split changes only which thread runs a row, never its arithmetic.
// sequence(seq) gives each of the num_seqs sequences' SequenceBlock.
template <typename SequenceAt>
std::vector<WorkItem> make_work_items(int64_t num_seqs, const SequenceAt& sequence, const AttentionParams& params,
                                      const Shape& shape, int threads) {
  constexpr int64_t kItemsPerThread = 8;
  const auto block_cost = [&](const SequenceBlock& block, int64_t begin, int64_t end) {
    return (end - begin) * shape.group * block.key_end(end - 1, params.causal);
  };
  int64_t total = 0;
  for (int64_t seq = 0; seq < num_seqs; ++seq) {
    const SequenceBlock block = sequence(seq);
    for (int64_t begin = 0; begin < block.length; begin += shape.queries_per_block) {
      total += block_cost(block, begin, std::min(begin + shape.queries_per_block, block.length));
    }
  }
  const int64_t target = std::max<int64_t>(1, total * params.num_kv_heads / (kItemsPerThread * threads));
  std::vector<WorkItem> items;
  for (int64_t seq = 0; seq < num_seqs; ++seq) {
    const SequenceBlock block = sequence(seq);
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

// One query block [query_begin, query_end) of `block`, kv head `kv_head`; tile_at(key_begin) gives each key tile.
template <typename TileAt>
void run_query_block(const QueryBlockProblem& problem, const SequenceBlock& block, int64_t kv_head,
                     int64_t query_begin, int64_t query_end, const TileAt& tile_at, RowScratch& scratch) {
  const int64_t block_key_end = prepare_rows(problem, block, kv_head, query_begin, query_end, scratch);
  const int64_t padded_rows = problem.shape.padded_rows(query_end - query_begin);
  for (int64_t key_begin = 0; key_begin < block_key_end; key_begin += kKeyTile) {
    process_tile(problem, padded_rows, key_begin, tile_at(key_begin), scratch);
  }
  store_rows(problem, block, kv_head, query_begin, query_end, scratch);
}

}  // namespace jagged::kernels::cpu::attention_block
