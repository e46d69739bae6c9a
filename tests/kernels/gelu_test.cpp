#include "kernels/gelu.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>

#include "jagged/nested_tensor.h"
#include "jagged/ops.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

// Largest |actual - expected| / bound(input, expected).
template <class Bound>
double worst_error_over_bound(const float* input, const float* actual, const float* expected, int64_t count,
                              Bound bound) {
  double worst = 0.0;
  for (int64_t i = 0; i < count; ++i) {
    const double error = std::fabs(static_cast<double>(actual[i]) - expected[i]);
    worst = std::max(worst, std::isnan(error) ? INFINITY : error / bound(input[i], expected[i]));
  }
  return worst;
}

// Both forms compute x * p(x) with p in [0, 1]: p within a few eps (erf form: the erfc fit's 1.2e-7 relative
// error plus f32 rounding; tanh form: exp within 1 ulp, then an add and a division), and one final rounding,
// so |error| <= 4 eps |x|.
double absolute_bound(float x, float /*expected*/) { return 4.0 * FLT_EPSILON * std::fabs(x) + FLT_MIN; }

void expect_matches_reference(ops::GeluForm form, void (*reference)(float*, int64_t)) {
  for (const int64_t dim : {1, 7, 64, 576}) {
    for (const auto& length_case : testing::ragged_length_cases()) {
      const int64_t rows = NestedTensor::from_lengths(length_case.lengths, {dim}).num_tokens();
      const Tensor input = testing::random_tensor({rows, dim}, 13, -8.0f, 8.0f);
      Tensor expected = input.clone();
      Tensor actual = input.clone();
      reference(expected.data<float>(), expected.numel());
      ops::gelu(actual, form);
      EXPECT_LE(worst_error_over_bound(input.data<float>(), actual.data<float>(), expected.data<float>(), input.numel(),
                                       absolute_bound),
                1.0)
          << length_case.name << " dim " << dim;
    }
  }
}

// Every representable-scale input from 1e-6 to 1e4 in magnitude, both signs, plus specials.
Tensor sweep() {
  std::vector<float> values = {0.0f, -0.0f, FLT_MIN, -FLT_MIN, 1e30f, -1e30f, FLT_MAX};
  for (float magnitude = 1e-6f; magnitude < 1e4f; magnitude *= 1.0007f) {
    values.push_back(magnitude);
    values.push_back(-magnitude);
  }
  return Tensor::from_floats(values, {static_cast<int64_t>(values.size())});
}

TEST(GeluErf, MatchesReferenceOnRaggedBatches) {
  expect_matches_reference(ops::GeluForm::erf, kernels::reference::gelu_erf);
}

TEST(GeluTanh, MatchesReferenceOnRaggedBatches) {
  expect_matches_reference(ops::GeluForm::tanh, kernels::reference::gelu_tanh);
}

TEST(GeluErf, SweepOfMagnitudes) {
  const Tensor input = sweep();
  Tensor expected = input.clone();
  Tensor actual = input.clone();
  kernels::reference::gelu_erf(expected.data<float>(), expected.numel());
  ops::gelu(actual, ops::GeluForm::erf);
  EXPECT_LE(worst_error_over_bound(input.data<float>(), actual.data<float>(), expected.data<float>(), input.numel(),
                                   absolute_bound),
            1.0);
}

// For x < 0, gelu(x) = x Phi(x) is tiny and must keep its relative accuracy (which 1 + erf(x / sqrt 2) would
// lose to cancellation): the erfc fit's 1.2e-7, the rounding of exp's argument P(t) - x^2 / 2 (absolute error
// |argument| eps / 2, about (x^2 / 4 + 1) eps, which exp turns into relative error), and a few roundings more.
TEST(GeluErf, NegativeTailKeepsRelativeAccuracy) {
  std::vector<float> values;
  for (float x = -9.0f; x < -0.01f; x += 0.001f) values.push_back(x);
  const auto count = static_cast<int64_t>(values.size());
  Tensor actual = Tensor::from_floats(values, {count});
  Tensor expected = actual.clone();
  kernels::reference::gelu_erf(expected.data<float>(), count);
  ops::gelu(actual, ops::GeluForm::erf);
  const auto relative_bound = [](float x, float exact) {
    const double x_squared = static_cast<double>(x) * x;
    return (1.2e-7 + (x_squared / 4.0 + 8.0) * FLT_EPSILON) * std::fabs(exact) + 1e-44;
  };
  EXPECT_LE(worst_error_over_bound(values.data(), actual.data<float>(), expected.data<float>(), count, relative_bound),
            1.0);
}

TEST(GeluTanh, SweepOfMagnitudes) {
  const Tensor input = sweep();
  Tensor expected = input.clone();
  Tensor actual = input.clone();
  kernels::reference::gelu_tanh(expected.data<float>(), expected.numel());
  ops::gelu(actual, ops::GeluForm::tanh);
  EXPECT_LE(worst_error_over_bound(input.data<float>(), actual.data<float>(), expected.data<float>(), input.numel(),
                                   absolute_bound),
            1.0);
}

// The two forms are different functions; they agree to about 1e-3 (the tanh fit's error), which tells a swap.
TEST(Gelu, FormsDifferAsExpected) {
  std::vector<float> values;
  for (float x = -5.0f; x <= 5.0f; x += 0.01f) values.push_back(x);
  const auto count = static_cast<int64_t>(values.size());
  Tensor erf_form = Tensor::from_floats(values, {count});
  Tensor tanh_form = erf_form.clone();
  ops::gelu(erf_form, ops::GeluForm::erf);
  ops::gelu(tanh_form, ops::GeluForm::tanh);
  const double difference = testing::max_abs_diff(erf_form.data<float>(), tanh_form.data<float>(), count);
  EXPECT_GT(difference, 1e-5);
  EXPECT_LT(difference, 1e-3);
  // Known values: gelu_erf(1) = Phi(1) = 0.8413447460685429, gelu_erf(-1) = -0.15865525393145707.
  Tensor known = Tensor::from_floats(std::vector<float>{1.0f, -1.0f}, {2});
  ops::gelu(known, ops::GeluForm::erf);
  EXPECT_NEAR(known.data<float>()[0], 0.8413447460685429, 2 * FLT_EPSILON);
  EXPECT_NEAR(known.data<float>()[1], -0.15865525393145707, 2 * FLT_EPSILON);
}

TEST(Gelu, ElementResultIsIndependentOfArrayLength) {
  const Tensor input = testing::random_tensor({70001}, 3, -10.0f, 10.0f);
  for (const auto form : {ops::GeluForm::erf, ops::GeluForm::tanh}) {
    Tensor all = input.clone();
    ops::gelu(all, form);
    for (const int64_t offset : {0, 3, 69990}) {
      Tensor part = Tensor::from_floats(std::span(input.data<float>() + offset, 11), {11});
      ops::gelu(part, form);
      EXPECT_EQ(std::memcmp(part.data<float>(), all.data<float>() + offset, 11 * sizeof(float)), 0) << offset;
    }
  }
}

TEST(Gelu, RejectsBadArguments) {
  Tensor ints = Tensor::zeros({4}, DType::i32);
  EXPECT_THROW(ops::gelu(ints, ops::GeluForm::erf), InvalidArgument);
  Tensor x = testing::random_tensor({4}, 1);
  EXPECT_THROW(ops::gelu(x, static_cast<ops::GeluForm>(7)), InvalidArgument);
}

}  // namespace
}  // namespace jagged
