// The padded baseline, as frameworks run attention on a padded batch (PyTorch's bmm -> masked_fill -> softmax
// -> bmm path): all batch x num_heads x max_seqlen^2 scores are materialised in one [batch, num_heads,
// max_seqlen, max_seqlen] tensor from the accounting allocator, computed with oneDNN sgemm, masked with -inf
// (key padding, and causal when set), softmaxed row by row, and multiplied by V with sgemm. Work is split by
// (sequence, head); oneDNN runs each GEMM on the calling thread inside the parallel region (no nesting).
#include <oneapi/dnnl/dnnl.h>

#include <cmath>
#include <limits>
#include <vector>

#include <hwy/highway.h>

#include "kernels/attention.h"
#include "kernels/cpu/attention_tiles.h"

namespace jagged::kernels::cpu {
namespace {
namespace hn = hwy::HWY_NAMESPACE;
using attention_tiles::exp2_nonpositive;
using attention_tiles::FloatTag;
using attention_tiles::FloatVec;
using attention_tiles::kLanes;

// Calls op(begin, lanes) over [0, count) in whole vectors, the last one partial.
template <typename Op>
void for_each_vector(int64_t count, Op&& op) {
  int64_t i = 0;
  for (; i + static_cast<int64_t>(kLanes) <= count; i += kLanes) op(i, kLanes);
  if (i < count) op(i, static_cast<size_t>(count - i));
}

// One row of `length` scaled scores: adds mask_bias (0 or -inf per key), softmaxes keys [0, count) and zeroes
// keys [count, length) (causally masked). A row that sees no key at all becomes zeros.
void masked_softmax_row(float* scores, const float* mask_bias, int64_t count, int64_t length) {
  const FloatTag d;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  FloatVec max_vec = hn::Set(d, neg_inf);
  for_each_vector(count, [&](int64_t i, size_t lanes) {
    const auto mask = hn::FirstN(d, lanes);
    const FloatVec biased = hn::Add(hn::MaskedLoad(mask, d, scores + i), hn::MaskedLoad(mask, d, mask_bias + i));
    hn::BlendedStore(biased, mask, d, scores + i);
    max_vec = hn::Max(max_vec, hn::IfThenElse(mask, biased, max_vec));
  });
  const float max_score = hn::GetLane(hn::MaxOfLanes(d, max_vec));
  if (max_score == neg_inf) count = 0;
  const FloatVec log2e = hn::Set(d, 1.4426950408889634f);
  const FloatVec bias = hn::Set(d, -max_score * 1.4426950408889634f);
  FloatVec sum_vec = hn::Zero(d);
  for_each_vector(count, [&](int64_t i, size_t lanes) {
    const auto mask = hn::FirstN(d, lanes);
    const FloatVec prob = hn::IfThenElseZero(mask, exp2_nonpositive(d, hn::MulAdd(hn::MaskedLoad(mask, d, scores + i), log2e, bias)));
    hn::BlendedStore(prob, mask, d, scores + i);
    sum_vec = hn::Add(sum_vec, prob);
  });
  const FloatVec inverse = hn::Set(d, count > 0 ? 1.0f / hn::GetLane(hn::SumOfLanes(d, sum_vec)) : 0.0f);
  for_each_vector(count, [&](int64_t i, size_t lanes) {
    const auto mask = hn::FirstN(d, lanes);
    hn::BlendedStore(hn::Mul(hn::MaskedLoad(mask, d, scores + i), inverse), mask, d, scores + i);
  });
  for (int64_t i = count; i < length; ++i) scores[i] = 0.0f;
}

}  // namespace

void attention_padded(ConstMatrixView q, ConstMatrixView k, ConstMatrixView v, MatrixView out, int64_t batch,
                      int64_t max_seqlen, const uint8_t* key_padding_mask, const AttentionParams& params,
                      float* scores) {
  if (batch == 0 || max_seqlen == 0) return;
  const int64_t head_dim = params.head_dim;
  const int64_t num_heads = params.num_heads;
  // The additive mask frameworks build from key_padding_mask: 0 for a real key, -inf for padding.
  std::vector<float> mask_bias(static_cast<size_t>(batch * max_seqlen));
  for (size_t i = 0; i < mask_bias.size(); ++i) {
    mask_bias[i] = key_padding_mask[i] != 0 ? 0.0f : -std::numeric_limits<float>::infinity();
  }
  Tensor allocated;  // [batch, num_heads, max_seqlen, max_seqlen] f32 unless the caller lent one
  if (scores == nullptr) allocated = Tensor({batch, num_heads, max_seqlen, max_seqlen});
  float* all_scores = scores != nullptr ? scores : allocated.data<float>();
  const int64_t work = batch * num_heads;
  int failures = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : failures)
  for (int64_t item = 0; item < work; ++item) {
    const int64_t seq = item / num_heads;
    const int64_t head = item % num_heads;
    const int64_t kv_head = params.kv_head_of(head);
    const SequenceBlock block = SequenceBlock::padded(seq, max_seqlen, max_seqlen);
    float* head_scores = all_scores + item * max_seqlen * max_seqlen;
    // scores = scale * Q . K^T over all max_seqlen x max_seqlen positions.
    failures += dnnl_sgemm('N', 'T', max_seqlen, max_seqlen, head_dim, params.scale, block.head_row(q, 0, head, head_dim),
                           q.row_stride, block.head_row(k, 0, kv_head, head_dim), k.row_stride, 0.0f, head_scores,
                           max_seqlen) != dnnl_success;
    for (int64_t query = 0; query < max_seqlen; ++query) {
      masked_softmax_row(head_scores + query * max_seqlen, mask_bias.data() + seq * max_seqlen,
                         block.key_end(query, params.causal), max_seqlen);
    }
    // out = P . V.
    failures += dnnl_sgemm('N', 'N', max_seqlen, head_dim, max_seqlen, 1.0f, head_scores, max_seqlen,
                           block.head_row(v, 0, kv_head, head_dim), v.row_stride, 0.0f,
                           block.head_row(out, 0, head, head_dim), out.row_stride) != dnnl_success;
  }
  if (failures > 0) throw Error(concat("attention_padded: oneDNN sgemm failed in ", failures, " calls"));
}

}  // namespace jagged::kernels::cpu
