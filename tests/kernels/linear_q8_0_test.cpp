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
    const ops::PackedWeight q8(weight, ops::WeightType::q8_0);
    const Tensor dequantized = q8.unpack();
    const ops::PackedWeight f32(dequantized);
    for (const auto& length_case : testing::ragged_length_cases()) {
      const int64_t rows = NestedTensor::from_lengths(length_case.lengths, {features.in}).num_tokens();
      const Tensor x = testing::random_tensor({rows, features.in}, 21, -2.0f, 2.0f);
      Tensor actual({rows, features.out});
      Tensor from_f32({rows, features.out});
      Tensor expected({rows, features.out});
      ops::linear(x, q8, &bias, actual);
      ops::linear(x, f32, &bias, from_f32);
      kernels::reference::linear(x.matrix(), dequantized.data<float>(), bias.data<float>(), expected.matrix());
      EXPECT_TRUE(testing::rows_bit_equal(actual.matrix(), from_f32.matrix())) << length_case.name << " in " << features.in;
      testing::expect_within_reference_bound(x, dequantized, bias, actual, expected,
                                             concat(length_case.name, " in ", features.in));
    }
  }
}

TEST(LinearQ8_0, RowResultIsIndependentOfBatch) {
  const int saved_threads = num_threads();
  const int64_t rows = 700;
  const int64_t in = 1000;
  const int64_t out = 600;
  const Tensor x = testing::random_tensor({rows, in}, 41);
  const ops::PackedWeight q8(testing::random_tensor({out, in}, 42), ops::WeightType::q8_0);
  const Tensor bias = testing::random_tensor({out}, 43);
  Tensor all({rows, out});
  ops::linear(x, q8, &bias, all);
  for (const auto& [begin, count] : {std::pair<int64_t, int64_t>{0, 1}, {17, 1}, {5, 15}, {100, 129}, {0, 700}}) {
    for (const int threads : {1, 2, 3}) {
      set_num_threads(threads);
      Tensor part({count, out});
      ops::linear(x.matrix().row_range(begin, begin + count), q8, &bias, part.matrix());
      EXPECT_TRUE(testing::rows_bit_equal(part.matrix(), all.matrix().row_range(begin, begin + count)))
          << "rows [" << begin << ", " << begin + count << ") with " << threads << " threads";
    }
  }
  set_num_threads(saved_threads);
}

}  // namespace
}  // namespace jagged
