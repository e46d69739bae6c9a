#include "kernels/attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "jagged/nested_tensor.h"
#include "jagged/ops.h"
#include "jagged/threads.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

constexpr float kSentinel = 1234.5f;
constexpr int64_t kOutMargin = 8;  // sentinel columns on each side of the out band

// q, k, v as the column bands of one fused QKV projection [rows, (num_heads + 2 * num_kv_heads) * head_dim], and
// out as a band of a wider buffer whose margins hold sentinels: every view is strided.
struct Buffers {
  Tensor qkv;
  Tensor out_storage;
  ConstMatrixView q, k, v;
  MatrixView out;

  Buffers(int64_t rows, const ops::AttentionConfig& config, uint64_t seed) {
    const int64_t q_cols = int64_t{config.num_heads} * config.head_dim;
    const int64_t kv_cols = int64_t{config.num_kv_heads} * config.head_dim;
    qkv = testing::random_tensor({rows, q_cols + 2 * kv_cols}, seed);
    out_storage = Tensor({rows, q_cols + 2 * kOutMargin});
    std::fill_n(out_storage.data<float>(), out_storage.numel(), kSentinel);
    const ConstMatrixView all = std::as_const(qkv).matrix();
    q = all.columns(0, q_cols);
    k = all.columns(q_cols, q_cols + kv_cols);
    v = all.columns(q_cols + kv_cols, q_cols + 2 * kv_cols);
    out = out_storage.matrix().columns(kOutMargin, kOutMargin + q_cols);
  }

  bool sentinels_intact() const {
    const ConstMatrixView all = out_storage.matrix();
    for (int64_t r = 0; r < all.rows; ++r) {
      for (int64_t c = 0; c < kOutMargin; ++c) {
        if (all.row(r)[c] != kSentinel || all.row(r)[all.cols - 1 - c] != kSentinel) return false;
      }
    }
    return true;
  }
};

double max_abs(ConstMatrixView m) {
  double worst = 0.0;
  for (int64_t r = 0; r < m.rows; ++r) {
    for (int64_t c = 0; c < m.cols; ++c) worst = std::max(worst, std::fabs(static_cast<double>(m.row(r)[c])));
  }
  return worst;
}

double max_diff(ConstMatrixView a, ConstMatrixView b) {
  double worst = 0.0;
  for (int64_t r = 0; r < a.rows; ++r) worst = std::max(worst, testing::max_abs_diff(a.row(r), b.row(r), a.cols));
  return worst;
}

kernels::AttentionParams params_of(const ops::AttentionConfig& config) {
  const float scale = config.scale > 0.0f ? config.scale : 1.0f / std::sqrt(static_cast<float>(config.head_dim));
  return {config.num_heads, config.num_kv_heads, config.head_dim, scale, config.causal};
}

// The test oracle FlashAttention uses: against the double reference, the kernel may err at most twice as much as
// a naive f32 implementation (scores, softmax with expf, weighted sum, all in plain float loops); the floor of a
// few ulp of max|v| covers cases where the naive one happens to be exact (a single key).
void naive_f32_attention(ConstMatrixView q, ConstMatrixView k, ConstMatrixView v, MatrixView out,
                         std::span<const int32_t> cu_seqlens, const kernels::AttentionParams& params) {
  const int64_t head_dim = params.head_dim;
  std::vector<float> scores;
  std::vector<float> weighted(static_cast<size_t>(head_dim));
  for (int64_t seq = 0; seq + 1 < static_cast<int64_t>(cu_seqlens.size()); ++seq) {
    const kernels::SequenceBlock block = kernels::SequenceBlock::packed(cu_seqlens, seq);
    for (int64_t head = 0; head < params.num_heads; ++head) {
      const int64_t kv_head = params.kv_head_of(head);
      for (int64_t query = 0; query < block.length; ++query) {
        const int64_t key_end = block.key_end(query, params.causal);
        scores.assign(static_cast<size_t>(key_end), 0.0f);
        float max_score = -INFINITY;
        const float* q_row = block.head_row(q, query, head, head_dim);
        for (int64_t key = 0; key < key_end; ++key) {
          const float* k_row = block.head_row(k, key, kv_head, head_dim);
          float dot = 0.0f;
          for (int64_t i = 0; i < head_dim; ++i) dot += q_row[i] * k_row[i];
          scores[key] = dot * params.scale;
          max_score = std::max(max_score, scores[key]);
        }
        float sum = 0.0f;
        for (float& score : scores) sum += (score = std::exp(score - max_score));
        std::fill(weighted.begin(), weighted.end(), 0.0f);
        for (int64_t key = 0; key < key_end; ++key) {
          const float* v_row = block.head_row(v, key, kv_head, head_dim);
          for (int64_t i = 0; i < head_dim; ++i) weighted[i] += scores[key] * v_row[i];
        }
        float* out_row = block.head_row(out, query, head, head_dim);
        for (int64_t i = 0; i < head_dim; ++i) out_row[i] = weighted[i] / sum;
      }
    }
  }
}

// Twice the naive f32 error on this batch (against `expected`, the double reference), plus 4 ulp of max|v|.
double tolerance(const Buffers& buffers, std::span<const int32_t> cu_seqlens, const ops::AttentionConfig& config,
                 ConstMatrixView expected) {
  Tensor naive({buffers.q.rows, int64_t{config.num_heads} * config.head_dim});
  naive_f32_attention(buffers.q, buffers.k, buffers.v, naive.matrix(), cu_seqlens, params_of(config));
  return 2.0 * max_diff(std::as_const(naive).matrix(), expected) + 4.0 * FLT_EPSILON * max_abs(buffers.v);
}

int64_t max_length(const std::vector<int64_t>& lengths) {
  int64_t longest = 0;
  for (const int64_t length : lengths) longest = std::max(longest, length);
  return longest;
}

std::string describe(const ops::AttentionConfig& config) {
  return concat(config.num_heads, "/", config.num_kv_heads, " heads, head_dim ", config.head_dim, ", scale ",
                config.scale, config.causal ? ", causal" : ", bidirectional");
}

// Fused vs reference on one ragged batch; also checks the sentinels around the out band.
void expect_fused_matches_reference(const std::vector<int64_t>& lengths, const ops::AttentionConfig& config,
                                    const std::string& name) {
  const std::vector<int32_t> cu_seqlens = cu_seqlens_from_lengths(lengths);
  const int64_t rows = cu_seqlens.back();
  Buffers buffers(rows, config, 100 + rows);
  Tensor expected({rows, int64_t{config.num_heads} * config.head_dim});
  kernels::reference::attention(buffers.q, buffers.k, buffers.v, expected.matrix(), cu_seqlens, params_of(config));
  ops::attention(buffers.q, buffers.k, buffers.v, buffers.out, cu_seqlens, config);
  EXPECT_LE(max_diff(buffers.out, std::as_const(expected).matrix()),
            tolerance(buffers, cu_seqlens, config, std::as_const(expected).matrix()))
      << name << ": " << describe(config);
  EXPECT_TRUE(buffers.sentinels_intact()) << name << ": " << describe(config);
}

// GQA 9/3 with a small head_dim keeps the double reference cheap (the test also runs under ASan); head_dim is
// swept below.
TEST(Attention, FusedMatchesReferenceOnRaggedBatches) {
  for (const auto& length_case : testing::ragged_length_cases()) {
    for (const bool causal : {true, false}) {
      expect_fused_matches_reference(length_case.lengths, {9, 3, 32, 0.0f, causal}, length_case.name);
    }
  }
}

TEST(Attention, FusedMatchesReferenceAcrossHeadLayouts) {
  const std::vector<int64_t> lengths = {0, 5, 1, 70, 17, 100};  // 70, 100: beyond one key tile
  const std::vector<ops::AttentionConfig> configs = {
      {8, 8, 64, 0.0f, true},  {4, 1, 64, 0.0f, true},   {9, 3, 8, 0.0f, true},  {4, 2, 80, 0.0f, true},
      {3, 1, 96, 0.0f, true},  {2, 2, 128, 0.0f, true},  {6, 2, 24, 0.0f, true}, {16, 1, 16, 0.0f, true},
      {2, 1, 136, 0.0f, true}, {9, 3, 64, 0.3f, true},   {1, 1, 8, 2.0f, true},
  };
  for (ops::AttentionConfig config : configs) {
    for (const bool causal : {true, false}) {
      config.causal = causal;
      expect_fused_matches_reference(lengths, config, "mixed");
    }
  }
}

TEST(Attention, EmptyBatchAndNoTokensAreFine) {
  const ops::AttentionConfig config{4, 2, 64, 0.0f, true};
  Buffers buffers(0, config, 1);
  const std::vector<int32_t> only_empty = {0, 0, 0};
  EXPECT_NO_THROW(ops::attention(buffers.q, buffers.k, buffers.v, buffers.out, only_empty, config));
  const std::vector<int32_t> no_sequences = {0};
  EXPECT_NO_THROW(ops::attention(buffers.q, buffers.k, buffers.v, buffers.out, no_sequences, config));
}

// A sequence's output is bit-identical alone and inside a batch (and with one thread or all).
TEST(Attention, SequenceOutputIsIndependentOfBatch) {
  const std::vector<int64_t> lengths = {70, 3, 129, 0, 33, 1};
  const std::vector<int32_t> cu_seqlens = cu_seqlens_from_lengths(lengths);
  for (const bool causal : {true, false}) {
    const ops::AttentionConfig config{6, 2, 64, 0.0f, causal};
    Buffers batch(cu_seqlens.back(), config, 21);
    ops::attention(batch.q, batch.k, batch.v, batch.out, cu_seqlens, config);
    for (size_t seq = 0; seq < lengths.size(); ++seq) {
      const int64_t length = lengths[seq];
      Buffers alone(length, config, 99);
      for (int64_t r = 0; r < length; ++r) {
        std::memcpy(alone.qkv.data<float>() + r * alone.qkv.dim(1), batch.qkv.data<float>() + (cu_seqlens[seq] + r) * batch.qkv.dim(1),
                    static_cast<size_t>(batch.qkv.dim(1)) * sizeof(float));
      }
      const std::vector<int32_t> one = {0, static_cast<int32_t>(length)};
      const int threads = num_threads();
      set_num_threads(1);
      ops::attention(alone.q, alone.k, alone.v, alone.out, one, config);
      set_num_threads(threads);
      for (int64_t r = 0; r < length; ++r) {
        EXPECT_EQ(std::memcmp(alone.out.row(r), batch.out.row(cu_seqlens[seq] + r),
                              static_cast<size_t>(alone.out.cols) * sizeof(float)), 0)
            << "sequence " << seq << " row " << r << (causal ? " causal" : " bidirectional");
      }
    }
  }
}

// The padded formulation on [batch, max_seqlen] rows, garbage in the padding rows: real rows match the reference,
// padded query rows are finite, and a sequence of length 0 (no key to see) gives zeros.
void expect_padded_matches_reference(const std::vector<int64_t>& lengths, const ops::AttentionConfig& config,
                                     const std::string& name) {
  const int64_t batch = static_cast<int64_t>(lengths.size());
  const int64_t max_seqlen = max_length(lengths);
  Buffers padded(batch * max_seqlen, config, 7);
  Tensor mask = Tensor::zeros({batch, max_seqlen}, DType::u8);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < max_seqlen; ++i) {
      if (i < lengths[b]) {
        mask.data<uint8_t>()[b * max_seqlen + i] = 1;
      } else {
        float* row = padded.qkv.data<float>() + (b * max_seqlen + i) * padded.qkv.dim(1);
        for (int64_t c = 0; c < padded.qkv.dim(1); ++c) row[c] = 30.0f;  // would dominate if not masked
      }
    }
  }
  ops::attention_padded(padded.q, padded.k, padded.v, padded.out, batch, max_seqlen, mask, config);
  EXPECT_TRUE(padded.sentinels_intact()) << name;

  // The reference on the real rows, packed.
  const std::vector<int32_t> cu_seqlens = cu_seqlens_from_lengths(lengths);
  Buffers packed(cu_seqlens.back(), config, 8);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < lengths[b]; ++i) {
      std::memcpy(packed.qkv.data<float>() + (cu_seqlens[b] + i) * packed.qkv.dim(1),
                  padded.qkv.data<float>() + (b * max_seqlen + i) * padded.qkv.dim(1),
                  static_cast<size_t>(padded.qkv.dim(1)) * sizeof(float));
    }
  }
  Tensor expected({cu_seqlens.back(), int64_t{config.num_heads} * config.head_dim});
  kernels::reference::attention(packed.q, packed.k, packed.v, expected.matrix(), cu_seqlens, params_of(config));
  const double tol = tolerance(packed, cu_seqlens, config, std::as_const(expected).matrix());
  for (int64_t b = 0; b < batch; ++b) {
    const ConstMatrixView real = padded.out.row_range(b * max_seqlen, b * max_seqlen + lengths[b]);
    EXPECT_LE(max_diff(real, std::as_const(expected).matrix().row_range(cu_seqlens[b], cu_seqlens[b + 1])), tol)
        << name << " sequence " << b << ": " << describe(config);
    for (int64_t i = lengths[b]; i < max_seqlen; ++i) {
      const float* row = padded.out.row(b * max_seqlen + i);
      for (int64_t c = 0; c < padded.out.cols; ++c) {
        ASSERT_TRUE(std::isfinite(row[c])) << name << " padded row " << i << " of sequence " << b;
        if (lengths[b] == 0) {
          ASSERT_EQ(row[c], 0.0f) << name << " sequence " << b << " has no keys";
        }
      }
    }
  }
}

TEST(Attention, PaddedMatchesReferenceOnRealRows) {
  for (const auto& length_case : testing::ragged_length_cases()) {
    // The 64-sequence case padded to 300 would need a [64, 9, 300, 300] score tensor (207 MB): the padded
    // path's cost is the point of the comparison, not something a unit test should pay.
    if (length_case.lengths.size() > 8) continue;
    for (const bool causal : {true, false}) {
      expect_padded_matches_reference(length_case.lengths, {6, 2, 32, 0.0f, causal}, length_case.name);
    }
  }
  for (const bool causal : {true, false}) {
    expect_padded_matches_reference({0, 5, 1, 70, 17}, {4, 1, 80, 0.0f, causal}, "mqa_80");
    expect_padded_matches_reference({9, 33, 2}, {8, 8, 128, 0.2f, causal}, "mha_128");
    expect_padded_matches_reference({3, 1}, {2, 2, 8, 0.0f, causal}, "tiny");
  }
}

TEST(Attention, RejectsBadArguments) {
  const ops::AttentionConfig good{4, 2, 16, 0.0f, true};
  Buffers buffers(10, good, 3);
  const std::vector<int32_t> cu = {0, 4, 10};
  const auto run = [&](const ops::AttentionConfig& config) {
    ops::attention(buffers.q, buffers.k, buffers.v, buffers.out, cu, config);
  };
  EXPECT_NO_THROW(run(good));
  EXPECT_THROW(run({4, 3, 16, 0.0f, true}), InvalidArgument);   // kv heads do not divide heads
  EXPECT_THROW(run({0, 2, 16, 0.0f, true}), InvalidArgument);   // no heads
  EXPECT_THROW(run({4, 0, 16, 0.0f, true}), InvalidArgument);   // no kv heads
  EXPECT_THROW(run({4, 2, 12, 0.0f, true}), InvalidArgument);   // head_dim not a multiple of 8
  EXPECT_THROW(run({4, 2, 0, 0.0f, true}), InvalidArgument);    // head_dim 0
  EXPECT_THROW(run({4, 2, -16, 0.0f, true}), InvalidArgument);  // negative head_dim
  EXPECT_THROW(run({4, 2, 16, -1.0f, true}), InvalidArgument);  // negative scale
  EXPECT_THROW(run({4, 2, 16, std::numeric_limits<float>::quiet_NaN(), true}), InvalidArgument);
  EXPECT_THROW(run({2, 2, 16, 0.0f, true}), InvalidArgument);   // q, out widths are not num_heads * head_dim
  EXPECT_THROW(run({4, 4, 16, 0.0f, true}), InvalidArgument);   // k, v widths are not num_kv_heads * head_dim
  EXPECT_THROW(run({4, 2, 8, 0.0f, true}), InvalidArgument);    // every width wrong

  const auto run_views = [&](ConstMatrixView q, ConstMatrixView k, ConstMatrixView v, MatrixView out) {
    ops::attention(q, k, v, out, cu, good);
  };
  EXPECT_THROW(run_views(buffers.q.columns(0, 48), buffers.k, buffers.v, buffers.out), InvalidArgument);
  EXPECT_THROW(run_views(buffers.q, buffers.k.columns(0, 16), buffers.v, buffers.out), InvalidArgument);
  EXPECT_THROW(run_views(buffers.q, buffers.k, buffers.v.columns(0, 24), buffers.out), InvalidArgument);
  EXPECT_THROW(run_views(buffers.q, buffers.k, buffers.v, buffers.out.columns(0, 32)), InvalidArgument);
  EXPECT_THROW(run_views(buffers.q, buffers.k.row_range(0, 9), buffers.v, buffers.out), InvalidArgument);
  EXPECT_THROW(run_views(buffers.q, buffers.k, buffers.v.row_range(1, 10), buffers.out), InvalidArgument);
  EXPECT_THROW(run_views(buffers.q, buffers.k, buffers.v, buffers.out.row_range(0, 9)), InvalidArgument);
  ConstMatrixView narrow_stride = buffers.q;
  narrow_stride.row_stride = 32;
  EXPECT_THROW(run_views(narrow_stride, buffers.k, buffers.v, buffers.out), InvalidArgument);
  ConstMatrixView no_data = buffers.q;
  no_data.data = nullptr;
  EXPECT_THROW(run_views(no_data, buffers.k, buffers.v, buffers.out), InvalidArgument);

  const auto run_cu = [&](std::vector<int32_t> offsets) {
    ops::attention(buffers.q, buffers.k, buffers.v, buffers.out, offsets, good);
  };
  EXPECT_THROW(run_cu({}), InvalidArgument);          // empty
  EXPECT_THROW(run_cu({1, 4, 10}), InvalidArgument);  // does not start at 0
  EXPECT_THROW(run_cu({0, 6, 4, 10}), InvalidArgument);  // decreasing
  EXPECT_THROW(run_cu({0, 4, 9}), InvalidArgument);   // ends before the last row
  EXPECT_THROW(run_cu({0, 4, 11}), InvalidArgument);  // ends past the last row
}

TEST(Attention, PaddedRejectsBadArguments) {
  const ops::AttentionConfig good{4, 2, 16, 0.0f, false};
  Buffers buffers(12, good, 4);
  const Tensor mask = Tensor::zeros({3, 4}, DType::u8);
  EXPECT_NO_THROW(ops::attention_padded(buffers.q, buffers.k, buffers.v, buffers.out, 3, 4, mask, good));
  EXPECT_THROW(ops::attention_padded(buffers.q, buffers.k, buffers.v, buffers.out, 2, 4, mask, good), InvalidArgument);
  EXPECT_THROW(ops::attention_padded(buffers.q, buffers.k, buffers.v, buffers.out, 4, 3, mask, good), InvalidArgument);
  EXPECT_THROW(ops::attention_padded(buffers.q, buffers.k, buffers.v, buffers.out, -3, -4, mask, good),
               InvalidArgument);
  EXPECT_THROW(ops::attention_padded(buffers.q, buffers.k, buffers.v, buffers.out, 3, 4, Tensor::zeros({3, 5}, DType::u8),
                                     good),
               InvalidArgument);
  EXPECT_THROW(ops::attention_padded(buffers.q, buffers.k, buffers.v, buffers.out, 3, 4, Tensor::zeros({3, 4}), good),
               InvalidArgument);  // f32 mask
  EXPECT_THROW(ops::attention_padded(buffers.q, buffers.k, buffers.v, buffers.out, 3, 4, Tensor(), good),
               InvalidArgument);  // no mask
  EXPECT_THROW(ops::attention_padded(buffers.q, buffers.k, buffers.v, buffers.out, 3, 4, mask, {4, 3, 16, 0.0f, false}),
               InvalidArgument);
  EXPECT_THROW(ops::attention_padded(buffers.q, buffers.k, buffers.v, buffers.out, 3, 4, mask, {4, 2, 20, 0.0f, false}),
               InvalidArgument);
  EXPECT_THROW(ops::attention_padded(buffers.q, buffers.k.columns(0, 16), buffers.v, buffers.out, 3, 4, mask, good),
               InvalidArgument);
}

}  // namespace
}  // namespace jagged
