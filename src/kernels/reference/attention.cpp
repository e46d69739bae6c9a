#include "kernels/attention.h"

#include <cmath>
#include <limits>
#include <vector>

namespace jagged::kernels::reference {

void attention(ConstMatrixView q, ConstMatrixView k, ConstMatrixView v, MatrixView out,
               std::span<const int32_t> cu_seqlens, const AttentionParams& params) {
  const int64_t head_dim = params.head_dim;
  std::vector<double> scores;
  std::vector<double> weighted(static_cast<size_t>(head_dim));
  for (int64_t seq = 0; seq + 1 < static_cast<int64_t>(cu_seqlens.size()); ++seq) {
    const SequenceBlock block = SequenceBlock::packed(cu_seqlens, seq);
    for (int64_t head = 0; head < params.num_heads; ++head) {
      const int64_t kv_head = params.kv_head_of(head);
      for (int64_t query = 0; query < block.length; ++query) {
        const float* q_row = block.head_row(q, query, head, head_dim);
        const int64_t key_end = block.key_end(query, params.causal);
        scores.assign(static_cast<size_t>(key_end), 0.0);
        double max_score = -std::numeric_limits<double>::infinity();
        for (int64_t key = 0; key < key_end; ++key) {
          const float* k_row = block.head_row(k, key, kv_head, head_dim);
          double dot = 0.0;
          for (int64_t i = 0; i < head_dim; ++i) dot += static_cast<double>(q_row[i]) * k_row[i];
          scores[key] = dot * params.scale;
          max_score = std::max(max_score, scores[key]);
        }
        double sum = 0.0;
        for (double& score : scores) {
          score = std::exp(score - max_score);
          sum += score;
        }
        std::fill(weighted.begin(), weighted.end(), 0.0);
        for (int64_t key = 0; key < key_end; ++key) {
          const float* v_row = block.head_row(v, key, kv_head, head_dim);
          for (int64_t i = 0; i < head_dim; ++i) weighted[i] += scores[key] * v_row[i];
        }
        float* out_row = block.head_row(out, query, head, head_dim);
        for (int64_t i = 0; i < head_dim; ++i) out_row[i] = static_cast<float>(weighted[i] / sum);
      }
    }
  }
}

}  // namespace jagged::kernels::reference
