#include "kernels/softmax.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "jagged/nested_tensor.h"
#include "jagged/ops.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

// p_i = e_i / sum, e_i = exp(x_i - max). The f32 subtraction rounds the exponent by up to |x_i - max| eps / 2
// (absolute), i.e. that much relative error in e_i; exp adds a couple of ulp; the f32 sum of cols terms adds
// cols eps / 2 relative plus the largest term error; one multiplication. Per element, relative to p_i:
// ((|x_i - max| + max_j |x_j - max|) / 2 + cols + 8) eps.
double worst_error_over_bound(const float* input, const float* actual, const float* expected, int64_t rows,
                              int64_t cols) {
  double worst = 0.0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = input + r * cols;
    const double max_value = *std::max_element(x, x + cols);
    double widest = 0.0;
    for (int64_t i = 0; i < cols; ++i) widest = std::max(widest, max_value - x[i]);
    for (int64_t i = r * cols; i < (r + 1) * cols; ++i) {
      const double relative = ((max_value - input[i] + widest) / 2.0 + cols + 8) * FLT_EPSILON;
      const double bound = relative * std::fabs(expected[i]) + 1e-40;
      const double error = std::fabs(static_cast<double>(actual[i]) - expected[i]);
      worst = std::max(worst, std::isnan(error) ? INFINITY : error / bound);
    }
  }
  return worst;
}

TEST(Softmax, MatchesReferenceOnRaggedBatches) {
  for (const int64_t cols : {1, 7, 64, 300, 1000}) {
    for (const auto& length_case : testing::ragged_length_cases()) {
      const int64_t rows = NestedTensor::from_lengths(length_case.lengths, {cols}).num_tokens();
      const Tensor input = testing::random_tensor({rows, cols}, 19, -30.0f, 30.0f);
      Tensor actual = input.clone();
      Tensor expected = input.clone();
      kernels::reference::softmax(expected.data<float>(), rows, cols);
      ops::softmax(actual);
      EXPECT_LE(worst_error_over_bound(input.data<float>(), actual.data<float>(), expected.data<float>(), rows, cols),
                1.0)
          << length_case.name << " cols " << cols;
    }
  }
}

TEST(Softmax, MaskedEntriesAndLargeValues) {
  // -inf (masked) gets exactly 0; huge logits do not overflow (the row max is subtracted first).
  Tensor x = Tensor::from_floats(std::vector<float>{-INFINITY, 1000.0f, 1000.0f, -INFINITY, 999.0f}, {1, 5});
  ops::softmax(x);
  const float* p = x.data<float>();
  EXPECT_EQ(p[0], 0.0f);
  EXPECT_EQ(p[3], 0.0f);
  const double e = std::exp(-1.0);
  EXPECT_NEAR(p[1], 1.0 / (2.0 + e), 16 * FLT_EPSILON);
  EXPECT_NEAR(p[4], e / (2.0 + e), 16 * FLT_EPSILON);
  // A fully masked row is NaN, as in PyTorch; the other rows are unaffected.
  Tensor masked = Tensor::from_floats(std::vector<float>{-INFINITY, -INFINITY, 0.0f, 0.0f}, {2, 2});
  ops::softmax(masked);
  EXPECT_TRUE(std::isnan(masked.data<float>()[0]));
  EXPECT_EQ(masked.data<float>()[2], 0.5f);
}

TEST(Softmax, RowResultIsIndependentOfBatch) {
  const Tensor x = testing::random_tensor({40, 77}, 3, -5.0f, 5.0f);
  Tensor all = x.clone();
  ops::softmax(all);
  Tensor alone = Tensor::from_floats(std::span(x.data<float>() + 9 * 77, 77), {1, 77});
  ops::softmax(alone);
  EXPECT_EQ(std::memcmp(alone.data<float>(), all.data<float>() + 9 * 77, 77 * sizeof(float)), 0);
}

TEST(Softmax, EmptyAndRejected) {
  Tensor no_cols({3, 0});
  EXPECT_NO_THROW(ops::softmax(no_cols));
  Tensor rank1 = testing::random_tensor({8}, 1);
  EXPECT_THROW(ops::softmax(rank1), InvalidArgument);
  Tensor ints = Tensor::zeros({2, 2}, DType::i32);
  EXPECT_THROW(ops::softmax(ints), InvalidArgument);
}

// Sampling weights against the reference: lengths 1, a part of a block, exactly a block, many blocks with a tail;
// temperatures below and above 1; with and without a floor. Each weight within a few ulp (both exp in double on
// the same shifted, divided value), each block sum within the rounding of kWeightBlock additions.
TEST(SamplingWeights, MatchReferenceOnRowsOfManyLengths) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> logit(-20.0, 20.0);
  for (const int64_t n : {int64_t{1}, int64_t{5}, kernels::kWeightBlock, int64_t{49152}, int64_t{1000}}) {
    for (const double temperature : {0.3, 1.0, 1.7}) {
      for (const double floor : {0.0, 0.05}) {
        std::vector<double> scores(static_cast<size_t>(n));
        for (double& score : scores) score = logit(rng);
        std::vector<double> expected = scores;
        std::vector<double> expected_sums(static_cast<size_t>(kernels::weight_blocks(n)));
        kernels::reference::sampling_weights(expected.data(), n, temperature, floor, expected_sums.data());
        const std::vector<double> sums = ops::sampling_weights(scores, temperature, floor);
        ASSERT_EQ(sums.size(), expected_sums.size());
        EXPECT_EQ(*std::max_element(scores.begin(), scores.end()), 1.0) << "the largest weight is exp(0)";
        for (int64_t i = 0; i < n; ++i) {
          EXPECT_NEAR(scores[i], expected[i], 8 * DBL_EPSILON * expected[i] + 1e-300) << n << " " << i;
        }
        for (size_t b = 0; b < sums.size(); ++b) {
          EXPECT_NEAR(sums[b], expected_sums[b], (kernels::kWeightBlock + 8) * DBL_EPSILON * (expected_sums[b] + 1e-300))
              << n << " block " << b;
        }
      }
    }
  }
}

// A weight below the floor is left out of its block's sum, never out of the weights; the largest is always kept.
TEST(SamplingWeights, FloorLeavesTokensOutOfTheBlockSums) {
  std::vector<double> scores{0.0, -10.0, 0.0, -0.5};
  const std::vector<double> sums = ops::sampling_weights(scores, 1.0, 0.5);
  ASSERT_EQ(sums.size(), 1u);
  EXPECT_DOUBLE_EQ(sums[0], 1.0 + 1.0 + std::exp(-0.5));
  EXPECT_GT(scores[1], 0.0);
  EXPECT_THROW(ops::sampling_weights(scores, 0.0, 0.0), InvalidArgument);
  std::vector<double> none;
  EXPECT_THROW(ops::sampling_weights(none, 1.0, 0.0), InvalidArgument);
}

}  // namespace
}  // namespace jagged
