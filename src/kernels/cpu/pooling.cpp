#include <algorithm>
#include <cmath>

#include <hwy/highway.h>

#include "core/threads.h"
#include "kernels/pooling.h"

namespace jagged::kernels::cpu {
namespace hn = hwy::HWY_NAMESPACE;

namespace {

// Work items are (sequence, band of columns): a single long sequence still spreads over the threads. The band
// split changes no arithmetic: every output element is reduced over its sequence's tokens in token order.
constexpr int64_t kColumnBand = 256;

// out[begin, end) = row[begin, end) (first token), or combined with it (later tokens).
void combine(const float* row, int64_t begin, int64_t end, Pooling pooling, bool first, float* out) {
  const hn::ScalableTag<float> d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = begin;
  if (first) {
    std::copy(row + begin, row + end, out + begin);
  } else if (pooling == Pooling::max) {
    for (; i + lanes <= end; i += lanes) hn::StoreU(hn::Max(hn::LoadU(d, out + i), hn::LoadU(d, row + i)), d, out + i);
    for (; i < end; ++i) out[i] = std::max(out[i], row[i]);
  } else {
    for (; i + lanes <= end; i += lanes) hn::StoreU(hn::Add(hn::LoadU(d, out + i), hn::LoadU(d, row + i)), d, out + i);
    for (; i < end; ++i) out[i] += row[i];
  }
}

// Pools the rows that for_each_row visits (each sequence's real tokens, in order) into out[begin, end).
template <typename ForEachRow>
void pool_band(const ForEachRow& for_each_row, Pooling pooling, int64_t begin, int64_t end, float* out) {
  int64_t count = 0;
  for_each_row([&](const float* row) {
    combine(row, begin, end, pooling, count == 0, out);
    ++count;
  });
  if (count == 0) {
    std::fill(out + begin, out + end, 0.0f);
  } else if (pooling == Pooling::mean && count > 1) {
    const hn::ScalableTag<float> d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    const float divisor = static_cast<float>(count);
    const auto divisor_v = hn::Set(d, divisor);
    int64_t i = begin;
    for (; i + lanes <= end; i += lanes) hn::StoreU(hn::Div(hn::LoadU(d, out + i), divisor_v), d, out + i);
    for (; i < end; ++i) out[i] /= divisor;
  }
}

template <typename PoolSequenceBand>
void for_each_item(int64_t num_seqs, int64_t dim, const PoolSequenceBand& body) {
  const int64_t bands = std::max<int64_t>(1, (dim + kColumnBand - 1) / kColumnBand);
  core::parallel_for(num_seqs * bands, [&](int64_t item) {
    const int64_t band = item % bands;
    body(item / bands, band * kColumnBand, std::min(dim, (band + 1) * kColumnBand));
  });
}

}  // namespace

void pool(const float* x, int64_t dim, const int32_t* cu_seqlens, int64_t num_seqs, Pooling pooling, float* out) {
  for_each_item(num_seqs, dim, [&](int64_t seq, int64_t begin, int64_t end) {
    const int64_t first = cu_seqlens[seq];
    const int64_t last = pooling == Pooling::cls ? std::min<int64_t>(first + 1, cu_seqlens[seq + 1]) : cu_seqlens[seq + 1];
    const auto rows = [&](const auto& visit) {
      for (int64_t row = first; row < last; ++row) visit(x + row * dim);
    };
    pool_band(rows, pooling, begin, end, out + seq * dim);
  });
}

void pool_padded(const float* x, int64_t dim, const uint8_t* mask, int64_t num_seqs, int64_t max_seqlen,
                 Pooling pooling, float* out) {
  for_each_item(num_seqs, dim, [&](int64_t seq, int64_t begin, int64_t end) {
    const int64_t positions = pooling == Pooling::cls ? std::min<int64_t>(1, max_seqlen) : max_seqlen;
    // Every position is visited and the padding skipped by its mask, as a framework's masked reduction does.
    const auto rows = [&](const auto& visit) {
      for (int64_t pos = 0; pos < positions; ++pos) {
        if (mask[seq * max_seqlen + pos] != 0) visit(x + (seq * max_seqlen + pos) * dim);
      }
    };
    pool_band(rows, pooling, begin, end, out + seq * dim);
  });
}

void l2_normalize(float* x, int64_t rows, int64_t dim) {
  // Each row is reduced alone, in a fixed order: results do not depend on the batch.
  core::parallel_rows(rows, 16, [&](int64_t row_begin, int64_t row_end) {
    const hn::ScalableTag<float> d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    for (int64_t r = row_begin; r < row_end; ++r) {
      float* row = x + r * dim;
      auto sum = hn::Zero(d);
      int64_t i = 0;
      for (; i + lanes <= dim; i += lanes) {
        const auto v = hn::LoadU(d, row + i);
        sum = hn::MulAdd(v, v, sum);
      }
      float sum_squares = hn::GetLane(hn::SumOfLanes(d, sum));
      for (; i < dim; ++i) sum_squares += row[i] * row[i];
      const float norm = std::max(std::sqrt(sum_squares), kL2NormalizeEps);
      const auto norm_v = hn::Set(d, norm);
      i = 0;
      for (; i + lanes <= dim; i += lanes) hn::StoreU(hn::Div(hn::LoadU(d, row + i), norm_v), d, row + i);
      for (; i < dim; ++i) row[i] /= norm;
    }
  });
}

}  // namespace jagged::kernels::cpu
