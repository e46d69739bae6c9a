// Q8_0 weights: llama.cpp's quantization, the kernel against the f32 reference on the dequantized weight, bit
// equality with the f32 kernel on that weight (the kernel dequantizes exactly), and batch invariance.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>

#include "jagged/nested_tensor.h"
#include "jagged/ops.h"
#include "jagged/threads.h"
#include "kernels/linear.h"
#include "testing/linear.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

// The quantization error of one weight is at most half a step plus the f16 rounding of the scale over 127 steps:
// |w - d q| <= (0.5 + 127 * 2^-11) * max|block| / 127.
TEST(LinearQ8_0, QuantizesLikeLlamaCppWithinHalfAStep) {
  const Tensor weight = testing::random_tensor({50, 70}, 7, -3.0f, 3.0f);  // 70: a partial last block
  const ops::PackedWeight packed(weight, ops::WeightType::q8_0);
  EXPECT_EQ(packed.nbytes(), static_cast<size_t>(2 * 3 * kernels::cpu::kLinearQ8PanelBlockBytes));
  const Tensor dequantized = packed.unpack();
  for (int64_t o = 0; o < 50; ++o) {
    for (int64_t b = 0; b < 70; b += 32) {
      float amax = 0.0f;
      for (int64_t i = b; i < std::min<int64_t>(70, b + 32); ++i) amax = std::max(amax, std::fabs(weight.data<float>()[o * 70 + i]));
      const double step = amax / 127.0;
      for (int64_t i = b; i < std::min<int64_t>(70, b + 32); ++i) {
        const double error = std::fabs(double{dequantized.data<float>()[o * 70 + i]} - weight.data<float>()[o * 70 + i]);
        ASSERT_LE(error, (0.5 + 127.0 / 2048.0) * step + 1e-30) << o << " " << i;
      }
    }
  }
  // A block's largest value is exactly +-127 steps (llama.cpp's d = amax / 127), and an all-zero block is zero.
  uint16_t scale = 0;
  int8_t quants[32];
  const float values[3] = {0.5f, -2.0f, 1.0f};
  kernels::cpu::quantize_q8_0_block(values, 3, scale, quants);
  EXPECT_EQ(quants[1], -127);
  EXPECT_EQ(quants[0], 32);  // round(0.5 / (2 / 127)) = round(31.75)
  EXPECT_EQ(quants[3], 0);
  const float zeros[2] = {0.0f, 0.0f};
  kernels::cpu::quantize_q8_0_block(zeros, 2, scale, quants);
  EXPECT_EQ(f16_to_f32(scale), 0.0f);
  EXPECT_EQ(quants[0], 0);
}

TEST(LinearQ8_0, MatchesReferenceAndF32KernelOnTheDequantizedWeight) {
  struct Features {
    int64_t in, out;
  };
  for (const Features features : {Features{1, 3}, Features{33, 5}, Features{64, 96}, Features{576, 40},
                                  Features{300, 200}}) {
    const Tensor weight = testing::random_tensor({features.out, features.in}, 22);
    const Tensor bias = testing::random_tensor({features.out}, 23);
    testing::expect_linear_matches_dequantized(ops::PackedWeight(weight, ops::WeightType::q8_0), bias, "q8_0");
  }
}

TEST(LinearQ8_0, RowResultIsIndependentOfBatch) {
  const Tensor x = testing::random_tensor({700, 1000}, 41);
  const ops::PackedWeight q8(testing::random_tensor({600, 1000}, 42), ops::WeightType::q8_0);
  testing::expect_rows_independent_of_batch(q8, x, testing::random_tensor({600}, 43), "q8_0");
}

}  // namespace
}  // namespace jagged
