#include "kernels/cpu/attention_query_block.h"

#include <hwy/cache_control.h>
#include <hwy/highway.h>

namespace jagged::kernels::cpu::attention_block {
namespace {
namespace hn = hwy::HWY_NAMESPACE;

constexpr int64_t kAlign = 64;

void prefetch(const float* begin, int64_t count) {
  for (int64_t i = 0; i < count; i += 16) hwy::Prefetch(begin + i);
}

template <size_t kRows, typename T>
void score_block(size_t vectors, const float* const* q_rows, const T* keys_t, size_t keys_stride,
                 size_t head_dim, const int64_t* key_end, int64_t key_begin, float log2_scale, RowState state,
                 float* probs, const T* next_keys_t) {
  const auto run = [&]<size_t kVecs>() {
    score_softmax_rows<kVecs, kRows, T>(q_rows, keys_t, keys_stride, head_dim, key_end, key_begin, log2_scale, state,
                                     probs, next_keys_t);
  };
  switch (vectors) {
    case 1: return run.template operator()<1>();
    case 2: return run.template operator()<2>();
    case 3: return run.template operator()<3>();
    default: return run.template operator()<4>();
  }
}

// kRows 0: the full P.V kernel (value_rows(vectors) rows); kSmallRows: the narrow one.
template <size_t kRows, typename T>
void value_block(size_t vectors, bool first, const float* probs, const float* alpha, const T* values,
                 size_t values_stride, size_t num_keys, float* acc, size_t acc_stride, const T* next_values) {
  const auto run = [&]<size_t kVecs>() {
    constexpr size_t rows = kRows == 0 ? value_rows(kVecs) : kRows;
    accumulate_values<kVecs, rows, T>(first, probs, alpha, values, values_stride, num_keys, acc, acc_stride, next_values);
  };
  switch (vectors) {
    case 1: return run.template operator()<1>();
    case 2: return run.template operator()<2>();
    case 3: return run.template operator()<3>();
    case 4: return run.template operator()<4>();
    case 5: return run.template operator()<5>();
    case 6: return run.template operator()<6>();
    case 7: return run.template operator()<7>();
    default: return run.template operator()<8>();
  }
}

// Keys [key_begin, key_begin + kKeyTile) visible to the rows in [row, row + rows): the last row sees the most.
int64_t block_keys(const RowScratch& scratch, size_t row, size_t rows, int64_t key_begin) {
  return std::clamp<int64_t>(scratch.key_end[row + rows - 1] - key_begin, 0, kKeyTile);
}

// Byte sizes of RowScratch's pieces, in its member order.
std::array<int64_t, 7> piece_bytes(const Shape& shape) {
  const int64_t rows = shape.max_rows();
  const auto f = static_cast<int64_t>(sizeof(float));
  return {rows * kKeyTile * f,
          rows * shape.acc_stride * f,
          rows * static_cast<int64_t>(kLanes) * f,
          rows * f,
          rows * f,
          rows * static_cast<int64_t>(sizeof(int64_t)),
          rows * static_cast<int64_t>(sizeof(const float*))};
}

}  // namespace

int64_t RowScratch::bytes(const Shape& shape) {
  int64_t total = 0;
  for (const int64_t piece : piece_bytes(shape)) total += round_up(piece, kAlign);
  return total;
}

RowScratch RowScratch::carve(std::byte* memory, const Shape& shape) {
  const std::array<int64_t, 7> sizes = piece_bytes(shape);
  std::byte* next = memory;
  const auto take = [&](size_t i) {
    std::byte* piece = next;
    next += round_up(sizes[i], kAlign);
    return piece;
  };
  RowScratch scratch;
  scratch.scores = reinterpret_cast<float*>(take(0));
  scratch.acc = reinterpret_cast<float*>(take(1));
  scratch.row_sum = reinterpret_cast<float*>(take(2));
  scratch.row_max = reinterpret_cast<float*>(take(3));
  scratch.alpha = reinterpret_cast<float*>(take(4));
  scratch.key_end = reinterpret_cast<int64_t*>(take(5));
  scratch.q_rows = reinterpret_cast<const float**>(take(6));
  return scratch;
}

int64_t prepare_rows(const QueryBlockProblem& problem, const SequenceBlock& block, int64_t kv_head,
                     int64_t query_begin, int64_t query_end, RowScratch& scratch) {
  const int64_t head_dim = problem.params.head_dim;
  const int64_t group = problem.shape.group;
  const int64_t rows = (query_end - query_begin) * group;
  const int64_t padded_rows = problem.shape.padded_rows(query_end - query_begin);
  const hn::ScalableTag<float> d;
  for (int64_t query = query_begin, row = 0; query < query_end; ++query) {
    for (int64_t head = kv_head * group; head < (kv_head + 1) * group; ++head, ++row) {
      scratch.q_rows[row] = block.head_row(problem.q, query, head, head_dim);
      scratch.key_end[row] = block.key_end(query, problem.params.causal);
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
  return scratch.key_end[rows - 1];
}

// Row group by row group: Q.K^T, online softmax and P.V of a few rows reuse the K and V tiles from L1 (the whole
// block's scores and accumulators would not fit beside them).
template <typename T>
void process_tile(const QueryBlockProblem& problem, int64_t padded_rows, int64_t key_begin, const KeyTile<T>& tile,
                  RowScratch& scratch) {
  const Shape& shape = problem.shape;
  const int64_t head_dim = problem.params.head_dim;
  // A small block (Shape::padded_rows) is one group of kSmallRows rows for the narrow kernels.
  const bool small = padded_rows == static_cast<int64_t>(kSmallRows);
  const int64_t row_group = small ? static_cast<int64_t>(kSmallRows) : shape.row_multiple;
  const size_t score_rows = small ? kSmallRows : kScoreRows;
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
         row += score_rows) {
      const int64_t keys = block_keys(scratch, row, score_rows, key_begin);
      float* probs = scratch.scores + row * kKeyTile;
      if (keys <= 0) {  // no row here sees this tile: P = 0, nothing to rescale
        std::fill_n(probs, score_rows * kKeyTile, 0.0f);
        std::fill_n(scratch.alpha + row, score_rows, 1.0f);
        continue;
      }
      const size_t key_vectors = static_cast<size_t>((keys + kLanes - 1) / kLanes);
      const RowState state{scratch.row_max + row, scratch.alpha + row, scratch.row_sum + row * kLanes};
      // The next tile is asked for once, by the block's first row group.
      const T* next_keys_t = row == 0 ? tile.next_keys_t : nullptr;
      const auto score_call = small ? &score_block<kSmallRows, T> : &score_block<kScoreRows, T>;
      score_call(key_vectors, scratch.q_rows + row, tile.keys_t, tile.keys_stride, static_cast<size_t>(head_dim),
                 scratch.key_end + row, key_begin, problem.log2_scale, state, probs, next_keys_t);
    }
    // acc = alpha * acc + P . V, head_dim in chunks.
    for (int64_t column = 0; column < shape.acc_stride; column += kMaxValueVectors * kLanes) {
      const size_t vectors = chunk_vectors(shape.acc_stride, column);
      const size_t rows_per_block = small ? kSmallRows : value_rows(vectors);
      for (size_t row = static_cast<size_t>(group_begin); row < static_cast<size_t>(group_begin + row_group);
           row += rows_per_block) {
        const int64_t keys = block_keys(scratch, row, rows_per_block, key_begin);
        if (keys <= 0) continue;  // every row here has alpha 1 and no visible key
        const auto value_call = small ? &value_block<kSmallRows, T> : &value_block<0, T>;
        const T* next_values = row == 0 && tile.next_values != nullptr ? tile.next_values + column : nullptr;
        value_call(vectors, key_begin == 0, scratch.scores + row * kKeyTile, scratch.alpha + row, tile.values + column,
                   static_cast<size_t>(shape.acc_stride), static_cast<size_t>(keys),
                   scratch.acc + row * shape.acc_stride + column, static_cast<size_t>(shape.acc_stride), next_values);
      }
    }
  }
}

template void process_tile(const QueryBlockProblem&, int64_t, int64_t, const KeyTile<float>&, RowScratch&);
template void process_tile(const QueryBlockProblem&, int64_t, int64_t, const KeyTile<hwy::bfloat16_t>&,
                           RowScratch&);

void store_rows(const QueryBlockProblem& problem, const SequenceBlock& block, int64_t kv_head, int64_t query_begin,
                int64_t query_end, const RowScratch& scratch) {
  const int64_t head_dim = problem.params.head_dim;
  const int64_t group = problem.shape.group;
  const hn::ScalableTag<float> d;
  const int64_t full = head_dim / kLanes * kLanes;
  const auto tail = hn::FirstN(d, static_cast<size_t>(head_dim - full));
  for (int64_t query = query_begin, row = 0; query < query_end; ++query) {
    for (int64_t head = kv_head * group; head < (kv_head + 1) * group; ++head, ++row) {
      const float sum = hn::GetLane(hn::SumOfLanes(d, hn::Load(d, scratch.row_sum + row * kLanes)));
      const FloatVec inverse = hn::Set(d, 1.0f / sum);
      const float* acc = scratch.acc + row * problem.shape.acc_stride;
      float* out = block.head_row(problem.out, query, head, head_dim);
      for (int64_t i = 0; i < full; i += kLanes) hn::StoreU(hn::Mul(hn::Load(d, acc + i), inverse), d, out + i);
      if (full < head_dim) hn::BlendedStore(hn::Mul(hn::Load(d, acc + full), inverse), tail, d, out + full);
    }
  }
}

}  // namespace jagged::kernels::cpu::attention_block
