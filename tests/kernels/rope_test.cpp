#include "kernels/rope.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <random>

#include "jagged/nested_tensor.h"
#include "jagged/ops.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

// Each output is a cos - b sin (or a sin + b cos) in f32: two products and a sum, plus the f32 rounding of cos
// and sin: within 4 eps (|a| + |b|) <= 8 eps max|x|.
double tolerance(const Tensor& x) {
  double largest = 0.0;
  for (int64_t i = 0; i < x.numel(); ++i)
    largest = std::max(largest, std::fabs(static_cast<double>(x.data<float>()[i])));
  return 8.0 * FLT_EPSILON * largest;
}

TEST(Rope, MatchesReferenceOnRaggedBatches) {
  struct Heads {
    int num_heads, head_dim;
  };
  for (const Heads heads : {Heads{1, 2}, Heads{3, 6}, Heads{9, 64}, Heads{2, 128}, Heads{4, 40}}) {
    const std::vector<float> inv_freq = ops::rope_inv_freq(heads.head_dim, 10000.0f);
    for (const auto pairs : {ops::RopePairs::adjacent, ops::RopePairs::halves}) {
      for (const bool with_starts : {false, true}) {
        for (const auto& length_case : testing::ragged_length_cases()) {
          const NestedTensor layout = NestedTensor::from_lengths(length_case.lengths, {1});
          // Some sequences continue a cached prefix, so positions reach the hundred thousands (a rotation computed
          // per token); without, positions repeat across sequences (a table of rotations per position).
          std::vector<int32_t> starts(static_cast<size_t>(layout.num_seqs()));
          for (size_t i = 0; i < starts.size(); ++i) starts[i] = static_cast<int32_t>((i % 3) * 50000);
          const Tensor positions = with_starts ? ops::token_positions(layout.cu_seqlens(), starts)
                                               : ops::token_positions(layout.cu_seqlens());
          const int64_t rows = layout.num_tokens();
          const int64_t cols = int64_t{heads.num_heads} * heads.head_dim;
          Tensor actual = testing::random_tensor({rows, cols}, 29, -4.0f, 4.0f);
          Tensor expected = actual.clone();
          const double bound = tolerance(actual);
          kernels::reference::rope(expected.matrix(), heads.num_heads, heads.head_dim, positions.data<int32_t>(),
                                   inv_freq.data(), pairs);
          ops::rope(actual.matrix(), heads.num_heads, heads.head_dim, positions, inv_freq, pairs);
          EXPECT_LE(testing::max_abs_diff(actual.data<float>(), expected.data<float>(), actual.numel()), bound)
              << length_case.name << " heads " << heads.num_heads << "x" << heads.head_dim << " pairs "
              << static_cast<int>(pairs) << " starts " << with_starts;
        }
      }
    }
  }
}

// A token's rotation does not depend on the other tokens' positions (which decide between a table of rotations
// per position and a rotation per token).
TEST(Rope, TokenResultIsIndependentOfBatch) {
  const std::vector<float> inv_freq = ops::rope_inv_freq(64, 10000.0f);
  const Tensor x = testing::random_tensor({4, 128}, 3);
  for (const auto pairs : {ops::RopePairs::adjacent, ops::RopePairs::halves}) {
    Tensor near = x.clone();  // positions 5, 6, 5, 6: fewer positions than tokens, a table
    ops::rope(near.matrix(), 2, 64, Tensor::from_ints(std::vector<int32_t>{5, 6, 5, 6}, {4}), inv_freq, pairs);
    Tensor far = x.clone();  // position 200000 in the batch: per token
    ops::rope(far.matrix(), 2, 64, Tensor::from_ints(std::vector<int32_t>{5, 6, 5, 200000}, {4}), inv_freq, pairs);
    EXPECT_EQ(std::memcmp(near.data<float>(), far.data<float>(), 3 * 128 * sizeof(float)), 0);
  }
}

// A hand-computed rotation: head_dim 4, inv_freq (1, 0.5), token positions 0 and 3.
TEST(Rope, KnownRotationsForBothPairConventions) {
  const std::vector<float> inv_freq = {1.0f, 0.5f};
  const Tensor positions = Tensor::from_ints(std::vector<int32_t>{3, 0}, {2});
  const std::vector<float> values = {1, 2, 3, 4, 1, 2, 3, 4};
  const auto rotate = [](double a, double b, double angle) {
    return std::pair{a * std::cos(angle) - b * std::sin(angle), a * std::sin(angle) + b * std::cos(angle)};
  };
  {
    Tensor x = Tensor::from_floats(values, {2, 4});
    ops::rope(x.matrix(), 1, 4, positions, inv_freq, ops::RopePairs::adjacent);
    const auto [a0, b0] = rotate(1, 2, 3.0);                 // pair (x0, x1), frequency 1
    const auto [a1, b1] = rotate(3, 4, 1.5);                 // pair (x2, x3), frequency 0.5
    const double expected[] = {a0, b0, a1, b1, 1, 2, 3, 4};  // position 0: unchanged
    for (int i = 0; i < 8; ++i) EXPECT_NEAR(x.data<float>()[i], expected[i], 32 * FLT_EPSILON) << i;
  }
  {
    Tensor x = Tensor::from_floats(values, {2, 4});
    ops::rope(x.matrix(), 1, 4, positions, inv_freq, ops::RopePairs::halves);
    const auto [a0, b0] = rotate(1, 3, 3.0);  // pair (x0, x2), frequency 1
    const auto [a1, b1] = rotate(2, 4, 1.5);  // pair (x1, x3), frequency 0.5
    const double expected[] = {a0, a1, b0, b1, 1, 2, 3, 4};
    for (int i = 0; i < 8; ++i) EXPECT_NEAR(x.data<float>()[i], expected[i], 32 * FLT_EPSILON) << i;
  }
}

// Rotating the K band of a fused QKV buffer leaves the Q and V bands untouched; the two conventions agree after
// permuting (x_2i, x_2i+1) <-> (x_i, x_i+d/2).
TEST(Rope, StridedBandAndConventionsAgreeUnderPermutation) {
  const int num_heads = 3;
  const int head_dim = 64;
  const int64_t rows = 37;
  const int64_t band = num_heads * head_dim;
  const std::vector<float> inv_freq = ops::rope_inv_freq(head_dim, 500000.0f);
  std::vector<int32_t> position_values(rows);
  std::mt19937 rng(5);
  for (auto& position : position_values) position = static_cast<int32_t>(rng() % 9000);  // any order
  const Tensor positions = Tensor::from_ints(position_values, {rows});

  Tensor qkv = testing::random_tensor({rows, 3 * band}, 7);
  const Tensor original = qkv.clone();
  ops::rope(qkv.matrix().columns(band, 2 * band), num_heads, head_dim, positions, inv_freq, ops::RopePairs::adjacent);
  for (int64_t r = 0; r < rows; ++r) {
    const float* now = qkv.data<float>() + r * 3 * band;
    const float* before = original.data<float>() + r * 3 * band;
    EXPECT_EQ(std::memcmp(now, before, band * sizeof(float)), 0) << "Q band of row " << r;
    EXPECT_EQ(std::memcmp(now + 2 * band, before + 2 * band, band * sizeof(float)), 0) << "V band of row " << r;
  }

  // The same K values laid out in halves order, rotated with the halves convention.
  Tensor halves({rows, band});
  for (int64_t r = 0; r < rows; ++r) {
    for (int h = 0; h < num_heads; ++h) {
      const float* source = original.data<float>() + r * 3 * band + band + h * head_dim;
      float* target = halves.data<float>() + r * band + h * head_dim;
      for (int i = 0; i < head_dim / 2; ++i) {
        target[i] = source[2 * i];
        target[i + head_dim / 2] = source[2 * i + 1];
      }
    }
  }
  ops::rope(halves.matrix(), num_heads, head_dim, positions, inv_freq, ops::RopePairs::halves);
  double worst = 0.0;
  for (int64_t r = 0; r < rows; ++r) {
    for (int h = 0; h < num_heads; ++h) {
      const float* adjacent = qkv.data<float>() + r * 3 * band + band + h * head_dim;
      const float* halved = halves.data<float>() + r * band + h * head_dim;
      for (int i = 0; i < head_dim / 2; ++i) {
        worst = std::max<double>(worst, std::fabs(adjacent[2 * i] - halved[i]));
        worst = std::max<double>(worst, std::fabs(adjacent[2 * i + 1] - halved[i + head_dim / 2]));
      }
    }
  }
  EXPECT_LE(worst, 2 * tolerance(original));
}

TEST(RopeInvFreq, DefaultFrequencies) {
  // theta^(-2i/d) for d = 64, theta = 10000 (float32 values as Hugging Face computes them).
  const std::vector<float> inv_freq = ops::rope_inv_freq(64, 10000.0f);
  ASSERT_EQ(inv_freq.size(), 32u);
  const std::pair<int, double> golden[] = {
      {0, 1.0}, {1, 7.498942018e-01}, {7, 1.333521456e-01}, {16, 9.999999776e-03}, {31, 1.333521504e-04}};
  for (const auto& [index, value] : golden) EXPECT_NEAR(inv_freq[index], value, 2 * FLT_EPSILON * value) << index;
}

// Llama 3.1's scaling (factor 8, low 1, high 4, original context 8192, theta 500000, head_dim 128). Golden
// values from transformers' _compute_llama3_parameters in float32 (see the comment in scripts, recomputed with
// torch): indices 0-28 keep their frequency, 29-34 are interpolated, 35-63 are divided by 8.
TEST(RopeInvFreq, Llama3ScalingMatchesHuggingFace) {
  const ops::RopeScaling scaling{8.0f, 1.0f, 4.0f, 8192};
  const std::vector<float> scaled = ops::rope_inv_freq(128, 500000.0f, scaling);
  const std::vector<float> plain = ops::rope_inv_freq(128, 500000.0f);
  ASSERT_EQ(scaled.size(), 64u);
  const std::pair<int, double> golden[] = {
      {0, 1.0},
      {10, 1.286873817e-01},
      {28, 3.211446106e-03},  // last high-frequency entry: unchanged
      {29, 2.166570630e-03},  // interpolated
      {31, 8.567514597e-04},
      {34, 1.785077911e-04},  // last interpolated
      {35, 9.556212171e-05},  // first low-frequency entry: divided by 8
      {50, 4.411534519e-06},
      {63, 3.068925878e-07},
  };
  // HF computes in float32; we compute in double and round once: a few ulp apart.
  for (const auto& [index, value] : golden) EXPECT_NEAR(scaled[index], value, 4 * FLT_EPSILON * value) << index;
  for (int i = 0; i <= 28; ++i) EXPECT_EQ(scaled[i], plain[i]) << i;
  for (int i = 35; i < 64; ++i) EXPECT_NEAR(scaled[i], plain[i] / 8.0, 2 * FLT_EPSILON * plain[i] / 8.0) << i;
}

TEST(RopeInvFreq, RejectsBadArguments) {
  EXPECT_THROW(ops::rope_inv_freq(0, 10000.0f), InvalidArgument);
  EXPECT_THROW(ops::rope_inv_freq(7, 10000.0f), InvalidArgument);
  EXPECT_THROW(ops::rope_inv_freq(64, 0.0f), InvalidArgument);
  EXPECT_THROW(ops::rope_inv_freq(64, NAN), InvalidArgument);
  EXPECT_THROW(ops::rope_inv_freq(64, 10000.0f, {8.0f, 4.0f, 4.0f, 8192}), InvalidArgument);  // high == low
  EXPECT_THROW(ops::rope_inv_freq(64, 10000.0f, {8.0f, 1.0f, 4.0f, 0}), InvalidArgument);
  EXPECT_THROW(ops::rope_inv_freq(64, 10000.0f, {-1.0f, 1.0f, 4.0f, 8192}), InvalidArgument);
}

TEST(TokenPositions, RestartPerSequencePlusStarts) {
  const std::vector<int32_t> cu_seqlens = {0, 3, 3, 4, 6};
  const Tensor plain = ops::token_positions(cu_seqlens);
  EXPECT_EQ(std::vector<int32_t>(plain.data<int32_t>(), plain.data<int32_t>() + 6),
            (std::vector<int32_t>{0, 1, 2, 0, 0, 1}));
  const std::vector<int32_t> starts = {10, 5, 0, 7};
  const Tensor shifted = ops::token_positions(cu_seqlens, starts);
  EXPECT_EQ(std::vector<int32_t>(shifted.data<int32_t>(), shifted.data<int32_t>() + 6),
            (std::vector<int32_t>{10, 11, 12, 0, 7, 8}));
  const std::vector<int32_t> no_tokens = {0};
  EXPECT_EQ(ops::token_positions(no_tokens).numel(), 0);
}

TEST(TokenPositions, RejectsBadArguments) {
  EXPECT_THROW(ops::token_positions(std::vector<int32_t>{}), InvalidArgument);
  EXPECT_THROW(ops::token_positions(std::vector<int32_t>{1, 3}), InvalidArgument);     // does not start at 0
  EXPECT_THROW(ops::token_positions(std::vector<int32_t>{0, 3, 2}), InvalidArgument);  // not monotonic
  const std::vector<int32_t> cu_seqlens = {0, 2, 5};
  EXPECT_THROW(ops::token_positions(cu_seqlens, std::vector<int32_t>{1}), InvalidArgument);  // one start for 2
  EXPECT_THROW(ops::token_positions(cu_seqlens, std::vector<int32_t>{0, -1}), InvalidArgument);
  EXPECT_THROW(ops::token_positions(cu_seqlens, std::vector<int32_t>{0, INT32_MAX - 1}), InvalidArgument);
}

// What a forward does: the rotations once (into a table with spare rows, as a workspace holds), then Q and K
// rotated in one call over their side-by-side bands: bit for bit what ops::rope gives per band, per layer.
TEST(Rope, RotationsOnceForQAndKEqualRopePerBand) {
  constexpr int kHeads = 9;
  constexpr int kKvHeads = 3;
  constexpr int kHeadDim = 64;
  const std::vector<float> inv_freq = ops::rope_inv_freq(kHeadDim, 10000.0f);
  for (const auto pairs : {ops::RopePairs::adjacent, ops::RopePairs::halves}) {
    for (const auto& length_case : testing::ragged_length_cases()) {
      const NestedTensor layout = NestedTensor::from_lengths(length_case.lengths, {1});
      std::vector<int32_t> starts(static_cast<size_t>(layout.num_seqs()));
      for (size_t i = 0; i < starts.size(); ++i) starts[i] = static_cast<int32_t>((i * 37) % 300);  // decode-like
      const Tensor positions = ops::token_positions(layout.cu_seqlens(), starts);
      const int64_t rows = layout.num_tokens();
      const Tensor qkv = testing::random_tensor({rows, (kHeads + 2 * kKvHeads) * kHeadDim}, 5);
      constexpr int64_t kQ = int64_t{kHeads} * kHeadDim;
      constexpr int64_t kK = int64_t{kKvHeads} * kHeadDim;
      Tensor per_band = qkv.clone();
      ops::rope(per_band.matrix().columns(0, kQ), kHeads, kHeadDim, positions, inv_freq, pairs);
      ops::rope(per_band.matrix().columns(kQ, kQ + kK), kKvHeads, kHeadDim, positions, inv_freq, pairs);
      Tensor once = qkv.clone();
      Tensor rotations({rows + 5, 2 * int64_t{kHeadDim}});
      ops::rope_rotations(positions, inv_freq, kHeadDim, pairs, rotations);
      ops::rope_apply(once.matrix().columns(0, kQ + kK), kHeads + kKvHeads, kHeadDim, rotations, pairs);
      EXPECT_EQ(std::memcmp(per_band.data<float>(), once.data<float>(), per_band.nbytes()), 0) << length_case.name;
    }
  }
}

TEST(Rope, RotationsRejectBadArguments) {
  const Tensor positions = Tensor::from_ints(std::vector<int32_t>{0, 1, 2}, {3});
  const std::vector<float> inv_freq = ops::rope_inv_freq(8, 10000.0f);
  Tensor rotations({3, 16});
  EXPECT_NO_THROW(ops::rope_rotations(positions, inv_freq, 8, ops::RopePairs::halves, rotations));
  Tensor too_few({2, 16});
  EXPECT_THROW(ops::rope_rotations(positions, inv_freq, 8, ops::RopePairs::halves, too_few), InvalidArgument);
  Tensor too_narrow({3, 8});
  EXPECT_THROW(ops::rope_rotations(positions, inv_freq, 8, ops::RopePairs::halves, too_narrow), InvalidArgument);
  EXPECT_THROW(ops::rope_rotations(positions, inv_freq, 7, ops::RopePairs::halves, rotations), InvalidArgument);
  const Tensor negative = Tensor::from_ints(std::vector<int32_t>{0, -4, 2}, {3});
  EXPECT_THROW(ops::rope_rotations(negative, inv_freq, 8, ops::RopePairs::halves, rotations), InvalidArgument);
  Tensor x = testing::random_tensor({4, 16}, 1);
  EXPECT_THROW(ops::rope_apply(x.matrix(), 2, 8, rotations, ops::RopePairs::halves), InvalidArgument);  // 4 > 3 rows
  EXPECT_THROW(ops::rope_apply(x.matrix().columns(0, 8), 2, 8, rotations, ops::RopePairs::halves), InvalidArgument);
}

TEST(Rope, RejectsBadArguments) {
  Tensor x = testing::random_tensor({3, 16}, 1);
  const Tensor positions = Tensor::from_ints(std::vector<int32_t>{0, 1, 2}, {3});
  const std::vector<float> inv_freq = ops::rope_inv_freq(8, 10000.0f);
  EXPECT_NO_THROW(ops::rope(x.matrix(), 2, 8, positions, inv_freq, ops::RopePairs::halves));
  EXPECT_THROW(ops::rope(x.matrix(), 3, 8, positions, inv_freq, ops::RopePairs::halves), InvalidArgument);
  EXPECT_THROW(ops::rope(x.matrix(), 0, 8, positions, inv_freq, ops::RopePairs::halves), InvalidArgument);
  EXPECT_THROW(ops::rope(x.matrix(), 16, 1, positions, std::vector<float>{}, ops::RopePairs::halves),
               InvalidArgument);  // odd head_dim
  EXPECT_THROW(ops::rope(x.matrix(), 2, 8, positions, std::vector<float>(3), ops::RopePairs::halves), InvalidArgument);
  const Tensor short_positions = Tensor::from_ints(std::vector<int32_t>{0, 1}, {2});
  EXPECT_THROW(ops::rope(x.matrix(), 2, 8, short_positions, inv_freq, ops::RopePairs::halves), InvalidArgument);
  const Tensor float_positions = testing::random_tensor({3}, 2);
  EXPECT_THROW(ops::rope(x.matrix(), 2, 8, float_positions, inv_freq, ops::RopePairs::halves), InvalidArgument);
  const Tensor negative = Tensor::from_ints(std::vector<int32_t>{0, -4, 2}, {3});
  EXPECT_THROW(ops::rope(x.matrix(), 2, 8, negative, inv_freq, ops::RopePairs::halves), InvalidArgument);
  const MatrixView no_data{nullptr, 3, 16, 16};
  EXPECT_THROW(ops::rope(no_data, 2, 8, positions, inv_freq, ops::RopePairs::halves), InvalidArgument);
  const MatrixView short_stride{x.data<float>(), 3, 16, 8};
  EXPECT_THROW(ops::rope(short_stride, 2, 8, positions, inv_freq, ops::RopePairs::halves), InvalidArgument);
  EXPECT_THROW(ops::rope(x.matrix(), 2, 8, positions, inv_freq, static_cast<ops::RopePairs>(9)), InvalidArgument);
}

}  // namespace
}  // namespace jagged
