#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/pooling.h"

namespace jagged::kernels::reference {
namespace {

// Pools the rows x[row_of(i)] for the real tokens i of one sequence. `rows` lists their row indices in order.
void pool_rows(const float* x, int64_t dim, const std::vector<int64_t>& rows, Pooling pooling, float* out) {
  if (rows.empty()) {
    std::fill(out, out + dim, 0.0f);
    return;
  }
  for (int64_t i = 0; i < dim; ++i) {
    double value = x[rows[0] * dim + i];
    if (pooling == Pooling::mean) {
      for (size_t t = 1; t < rows.size(); ++t) value += x[rows[t] * dim + i];
      value /= static_cast<double>(rows.size());
    } else if (pooling == Pooling::max) {
      for (size_t t = 1; t < rows.size(); ++t) value = std::max(value, static_cast<double>(x[rows[t] * dim + i]));
    }
    out[i] = static_cast<float>(value);
  }
}

}  // namespace

void pool(const float* x, int64_t dim, const int32_t* cu_seqlens, int64_t num_seqs, Pooling pooling, float* out) {
  for (int64_t seq = 0; seq < num_seqs; ++seq) {
    std::vector<int64_t> rows;
    const int64_t end = pooling == Pooling::cls ? std::min(cu_seqlens[seq] + 1, cu_seqlens[seq + 1]) : cu_seqlens[seq + 1];
    for (int64_t row = cu_seqlens[seq]; row < end; ++row) rows.push_back(row);
    pool_rows(x, dim, rows, pooling, out + seq * dim);
  }
}

void pool_padded(const float* x, int64_t dim, const uint8_t* mask, int64_t num_seqs, int64_t max_seqlen,
                 Pooling pooling, float* out) {
  for (int64_t seq = 0; seq < num_seqs; ++seq) {
    std::vector<int64_t> rows;
    const int64_t positions = pooling == Pooling::cls ? std::min<int64_t>(1, max_seqlen) : max_seqlen;
    for (int64_t pos = 0; pos < positions; ++pos) {
      if (mask[seq * max_seqlen + pos] != 0) rows.push_back(seq * max_seqlen + pos);
    }
    pool_rows(x, dim, rows, pooling, out + seq * dim);
  }
}

void l2_normalize(float* x, int64_t rows, int64_t dim) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x + r * dim;
    double sum_squares = 0.0;
    for (int64_t i = 0; i < dim; ++i) sum_squares += static_cast<double>(row[i]) * row[i];
    const double norm = std::max(std::sqrt(sum_squares), static_cast<double>(kL2NormalizeEps));
    for (int64_t i = 0; i < dim; ++i) row[i] = static_cast<float>(row[i] / norm);
  }
}

}  // namespace jagged::kernels::reference
