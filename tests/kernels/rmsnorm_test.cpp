#include "kernels/rmsnorm.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cstring>

#include "jagged/nested_tensor.h"
#include "jagged/ops.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

TEST(RmsNorm, MatchesReferenceOnRaggedBatches) {
  for (const int64_t dim : {1, 7, 64, 576, 1000}) {
    for (const auto& length_case : testing::ragged_length_cases()) {
      const NestedTensor lengths = NestedTensor::from_lengths(length_case.lengths, {dim});
      const int64_t rows = lengths.num_tokens();
      const Tensor x = testing::random_tensor({rows, dim}, 11, -3.0f, 3.0f);
      const Tensor weight = testing::random_tensor({dim}, 12);
      Tensor expected({rows, dim});
      Tensor actual({rows, dim});
      kernels::reference::rmsnorm(x.data<float>(), weight.data<float>(), rows, dim, 1e-5f, expected.data<float>());
      ops::rmsnorm(x, weight, 1e-5f, actual);
      // Output magnitudes are O(|weight|) <= 1; f32 sums of dim terms err by ~dim * eps relative.
      const double tolerance = 4.0 * (dim + 8) * FLT_EPSILON;
      EXPECT_LE(testing::max_abs_diff(actual.data<float>(), expected.data<float>(), rows * dim), tolerance)
          << length_case.name << " dim " << dim;
    }
  }
}

TEST(RmsNorm, RowResultIsIndependentOfBatch) {
  const Tensor x = testing::random_tensor({50, 96}, 3);
  const Tensor weight = testing::random_tensor({96}, 4);
  Tensor all({50, 96});
  ops::rmsnorm(x, weight, 1e-6f, all);
  Tensor one_row = Tensor::from_floats(std::span(x.data<float>() + 17 * 96, 96), {1, 96});
  Tensor alone({1, 96});
  ops::rmsnorm(one_row, weight, 1e-6f, alone);
  EXPECT_EQ(std::memcmp(alone.data<float>(), all.data<float>() + 17 * 96, 96 * sizeof(float)), 0);
}

TEST(RmsNorm, RejectsMismatchedShapes) {
  const Tensor x = testing::random_tensor({4, 8}, 1);
  Tensor out({4, 8});
  EXPECT_THROW(ops::rmsnorm(x, testing::random_tensor({7}, 2), 1e-5f, out), InvalidArgument);
  Tensor wrong_out({4, 9});
  EXPECT_THROW(ops::rmsnorm(x, testing::random_tensor({8}, 2), 1e-5f, wrong_out), InvalidArgument);
  EXPECT_THROW(ops::rmsnorm(x, testing::random_tensor({8}, 2), 0.0f, out), InvalidArgument);
}

}  // namespace
}  // namespace jagged
