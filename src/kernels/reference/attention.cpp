#include "kernels/attention.h"

#include <cmath>
#include <limits>
#include <vector>

namespace jagged::kernels::reference {

namespace {

// One query row against keys [0, key_end) of k/v rows starting at key_row.
void attend(const float* q_row, ConstMatrixView k, ConstMatrixView v, int64_t key_row, int64_t key_end,
            int64_t kv_head, const AttentionParams& params, float* out_row) {
  const int64_t head_dim = params.head_dim;
  std::vector<double> scores(static_cast<size_t>(key_end));
  std::vector<double> weighted(static_cast<size_t>(head_dim), 0.0);
  double max_score = -std::numeric_limits<double>::infinity();
  for (int64_t key = 0; key < key_end; ++key) {
    const float* k_row = k.row(key_row + key) + kv_head * head_dim;
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
  for (int64_t key = 0; key < key_end; ++key) {
    const float* v_row = v.row(key_row + key) + kv_head * head_dim;
    for (int64_t i = 0; i < head_dim; ++i) weighted[i] += scores[key] * v_row[i];
  }
  for (int64_t i = 0; i < head_dim; ++i) out_row[i] = static_cast<float>(weighted[i] / sum);
}

}  // namespace

void attention(ConstMatrixView q, ConstMatrixView k, ConstMatrixView v, MatrixView out,
               std::span<const int32_t> cu_seqlens, const AttentionParams& params) {
  attention_with_context(q, k, v, out, cu_seqlens, cu_seqlens, std::vector<int32_t>(cu_seqlens.size(), 0), params);
}

void attention_with_context(ConstMatrixView q, ConstMatrixView k, ConstMatrixView v, MatrixView out,
                            std::span<const int32_t> cu_seqlens, std::span<const int32_t> key_cu_seqlens,
                            std::span<const int32_t> context_lengths, const AttentionParams& params) {
  for (int64_t seq = 0; seq + 1 < static_cast<int64_t>(cu_seqlens.size()); ++seq) {
    SequenceBlock block = SequenceBlock::packed(cu_seqlens, seq);
    block.key_offset = context_lengths[seq];
    for (int64_t head = 0; head < params.num_heads; ++head) {
      for (int64_t query = 0; query < block.length; ++query) {
        attend(block.head_row(q, query, head, params.head_dim), k, v, key_cu_seqlens[seq],
               block.key_end(query, params.causal), params.kv_head_of(head), params,
               block.head_row(out, query, head, params.head_dim));
      }
    }
  }
}

}  // namespace jagged::kernels::reference
