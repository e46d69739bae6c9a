#include "kernels/silu.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>

#include "jagged/nested_tensor.h"
#include "jagged/ops.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

// silu = x / (1 + e), e = exp(-x): exp within 1 ulp (Highway), the add and the division one rounding each, so
// the relative error is a few eps; |silu(x)| <= |x| turns that into 4 eps |x|. Inputs below -88 are clamped
// (exp(88) stays finite), which changes results of magnitude < 1e-36 only.
double worst_error_over_bound(const float* input, const float* actual, const float* expected, int64_t count) {
  double worst = 0.0;
  for (int64_t i = 0; i < count; ++i) {
    const double bound = 4.0 * FLT_EPSILON * std::fabs(input[i]) + 1e-36;
    const double error = std::fabs(static_cast<double>(actual[i]) - expected[i]);
    worst = std::max(worst, std::isnan(error) ? INFINITY : error / bound);
  }
  return worst;
}

TEST(Silu, MatchesReferenceOnRaggedBatches) {
  for (const int64_t dim : {1, 7, 64, 576}) {
    for (const auto& length_case : testing::ragged_length_cases()) {
      const int64_t rows = NestedTensor::from_lengths(length_case.lengths, {dim}).num_tokens();
      const Tensor input = testing::random_tensor({rows, dim}, 9, -20.0f, 20.0f);
      Tensor expected = input.clone();
      Tensor actual = input.clone();
      kernels::reference::silu(expected.data<float>(), expected.numel());
      ops::silu(actual);
      EXPECT_LE(
          worst_error_over_bound(input.data<float>(), actual.data<float>(), expected.data<float>(), input.numel()), 1.0)
          << length_case.name << " dim " << dim;
    }
  }
}

TEST(Silu, EdgeValues) {
  const std::vector<float> values = {0.0f,  -0.0f,  1e-30f, -1e-30f, 1.0f, -1.0f, 87.0f,   -87.0f,
                                     88.5f, -88.5f, 100.0f, -100.0f, 1e6f, -1e6f, FLT_MAX, -FLT_MAX};
  Tensor actual = Tensor::from_floats(values, {static_cast<int64_t>(values.size())});
  Tensor expected = actual.clone();
  kernels::reference::silu(expected.data<float>(), expected.numel());
  ops::silu(actual);
  EXPECT_LE(worst_error_over_bound(values.data(), actual.data<float>(), expected.data<float>(), actual.numel()), 1.0);
  Tensor nan = Tensor::from_floats(std::vector<float>{NAN}, {1});
  ops::silu(nan);
  EXPECT_TRUE(std::isnan(nan.data<float>()[0]));
}

// An element's result must not depend on where the array ends or a thread chunk starts.
TEST(Silu, ElementResultIsIndependentOfArrayLength) {
  const Tensor input = testing::random_tensor({100003}, 3, -10.0f, 10.0f);
  Tensor all = input.clone();
  ops::silu(all);
  for (const int64_t offset : {0, 1, 5, 17, 99990}) {
    Tensor part = Tensor::from_floats(std::span(input.data<float>() + offset, 13), {13});
    ops::silu(part);
    EXPECT_EQ(std::memcmp(part.data<float>(), all.data<float>() + offset, 13 * sizeof(float)), 0) << offset;
  }
}

TEST(Silu, RejectsNonFloat) {
  Tensor ints = Tensor::zeros({4}, DType::i32);
  EXPECT_THROW(ops::silu(ints), InvalidArgument);
  Tensor undefined;
  EXPECT_THROW(ops::silu(undefined), InvalidArgument);
}

}  // namespace
}  // namespace jagged
