#include "kernels/layernorm.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>

#include "jagged/nested_tensor.h"
#include "jagged/ops.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

TEST(LayerNorm, MatchesReferenceOnRaggedBatches) {
  for (const int64_t dim : {1, 7, 64, 576, 1000}) {
    for (const auto& length_case : testing::ragged_length_cases()) {
      const int64_t rows = NestedTensor::from_lengths(length_case.lengths, {dim}).num_tokens();
      // An offset mean (+5) checks the two-pass variance: E[x^2] - E[x]^2 would lose digits here.
      const Tensor x = testing::random_tensor({rows, dim}, 11, 2.0f, 8.0f);
      const Tensor weight = testing::random_tensor({dim}, 12);
      const Tensor bias = testing::random_tensor({dim}, 13);
      Tensor expected({rows, dim});
      Tensor actual({rows, dim});
      kernels::reference::layernorm(x.data<float>(), weight.data<float>(), bias.data<float>(), rows, dim, 1e-5f,
                                    expected.data<float>());
      ops::layernorm(x, weight, bias, 1e-5f, actual);
      // Normalised values are O(1) (at most sqrt(dim)); f32 sums of dim terms err by ~dim eps relative, so the
      // mean, the variance and the output err by about (dim + 8) eps times the output scale.
      double scale = 1.0;
      for (int64_t i = 0; i < rows * dim; ++i) scale = std::max(scale, 1.0 + std::fabs(expected.data<float>()[i]));
      const double tolerance = 4.0 * (dim + 8) * FLT_EPSILON * scale;
      EXPECT_LE(testing::max_abs_diff(actual.data<float>(), expected.data<float>(), rows * dim), tolerance)
          << length_case.name << " dim " << dim;
    }
  }
}

TEST(LayerNorm, InPlaceAndKnownValues) {
  // x = [1, 2, 3, 4]: mean 2.5, biased variance 1.25.
  Tensor x = Tensor::from_floats(std::vector<float>{1, 2, 3, 4}, {1, 4});
  const Tensor weight = Tensor::from_floats(std::vector<float>{1, 1, 2, 2}, {4});
  const Tensor bias = Tensor::from_floats(std::vector<float>{0, 1, 0, 1}, {4});
  ops::layernorm(x, weight, bias, 1e-6f, x);
  const double inv_std = 1.0 / std::sqrt(1.25 + 1e-6);
  const double expected[] = {-1.5 * inv_std, -0.5 * inv_std + 1, 2 * 0.5 * inv_std, 2 * 1.5 * inv_std + 1};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(x.data<float>()[i], expected[i], 8 * FLT_EPSILON) << i;
}

TEST(LayerNorm, RowResultIsIndependentOfBatch) {
  const Tensor x = testing::random_tensor({50, 96}, 3);
  const Tensor weight = testing::random_tensor({96}, 4);
  const Tensor bias = testing::random_tensor({96}, 5);
  Tensor all({50, 96});
  ops::layernorm(x, weight, bias, 1e-5f, all);
  const Tensor one_row = Tensor::from_floats(std::span(x.data<float>() + 17 * 96, 96), {1, 96});
  Tensor alone({1, 96});
  ops::layernorm(one_row, weight, bias, 1e-5f, alone);
  EXPECT_EQ(std::memcmp(alone.data<float>(), all.data<float>() + 17 * 96, 96 * sizeof(float)), 0);
}

TEST(LayerNorm, RejectsBadArguments) {
  const Tensor x = testing::random_tensor({4, 8}, 1);
  const Tensor weight = testing::random_tensor({8}, 2);
  const Tensor bias = testing::random_tensor({8}, 3);
  Tensor out({4, 8});
  EXPECT_NO_THROW(ops::layernorm(x, weight, bias, 1e-5f, out));
  EXPECT_THROW(ops::layernorm(x, testing::random_tensor({7}, 2), bias, 1e-5f, out), InvalidArgument);
  EXPECT_THROW(ops::layernorm(x, weight, testing::random_tensor({9}, 2), 1e-5f, out), InvalidArgument);
  Tensor wrong_out({4, 9});
  EXPECT_THROW(ops::layernorm(x, weight, bias, 1e-5f, wrong_out), InvalidArgument);
  EXPECT_THROW(ops::layernorm(x, weight, bias, 0.0f, out), InvalidArgument);
  EXPECT_THROW(ops::layernorm(x, weight, bias, NAN, out), InvalidArgument);
  const Tensor x_rank3 = testing::random_tensor({2, 2, 8}, 1);
  EXPECT_THROW(ops::layernorm(x_rank3, weight, bias, 1e-5f, out), InvalidArgument);
}

}  // namespace
}  // namespace jagged
