// bf16 weights: every path this CPU runs (AMX and AVX512-BF16 where present, the portable one always) against the f32
// reference on the dequantized weight, and bit-for-bit batch invariance per path.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "jagged/nested_tensor.h"
#include "jagged/ops.h"
#include "jagged/threads.h"
#include "kernels/linear.h"
#include "testing/linear.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

using kernels::cpu::LinearBf16Path;

std::vector<LinearBf16Path> paths_here() {
  std::vector<LinearBf16Path> paths{LinearBf16Path::portable};
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512bf16")) paths.push_back(LinearBf16Path::avx512_bf16);
#endif
  // AMX's kernel runs here whether or not it passed its self-check, so that a wrong kernel fails these tests.
  if (kernels::cpu::amx_bf16_available()) paths.push_back(LinearBf16Path::amx_bf16);
  return paths;
}

// A bf16 weight packed for the kernels, and the same values widened to f32 (the reference's weight).
struct Bf16Weight {
  std::vector<uint32_t> packed;
  Tensor dequantized;  // [out, in] f32
};

Bf16Weight make_weight(const Tensor& weight) {
  const int64_t out = weight.dim(0);
  const int64_t in = weight.dim(1);
  Bf16Weight w;
  w.packed.assign(static_cast<size_t>(kernels::cpu::packed_linear_bf16_pairs(out, in)), 0);
  kernels::cpu::pack_linear_weight_bf16(weight.data<float>(), out, in, w.packed.data());
  w.dequantized = Tensor({out, in});
  kernels::cpu::unpack_linear_weight_bf16(w.packed.data(), out, in, w.dequantized.data<float>());
  return w;
}

// The kernel on an aligned copy of the packed weight.
void run(ConstMatrixView x, const Bf16Weight& w, int64_t out_features, const float* bias, MatrixView out,
         LinearBf16Path path) {
  std::vector<uint32_t> buffer(w.packed.size() + 16);
  uint32_t* aligned = buffer.data();
  while (reinterpret_cast<uintptr_t>(aligned) % 64 != 0) ++aligned;
  std::memcpy(aligned, w.packed.data(), w.packed.size() * sizeof(uint32_t));
  kernels::cpu::linear_packed_bf16(x, aligned, out_features, bias, out, path);
}

Tensor rounded_to_bf16(ConstMatrixView x) {
  Tensor rounded({x.rows, x.cols});
  for (int64_t r = 0; r < x.rows; ++r) {
    for (int64_t i = 0; i < x.cols; ++i) rounded.data<float>()[r * x.cols + i] = bf16_to_f32(f32_to_bf16(x.row(r)[i]));
  }
  return rounded;
}

// Worst |actual - expected| / bound, bound = (relative + (K + 2) eps) sum_k |x_k w_k| + eps |bias| + FLT_MIN:
// relative is the error of rounding x to bf16 (2^-8) when expected is computed from x itself, 0 when from x
// rounded to bf16; (K + 2) eps bounds f32 accumulation of K products, exact in f32 (bf16 x bf16: 16 bits).
double worst_error_over_bound(ConstMatrixView x, const Tensor& weight, const float* bias, ConstMatrixView actual,
                              ConstMatrixView expected, double relative) {
  const int64_t in = x.cols;
  double worst = 0.0;
  for (int64_t r = 0; r < x.rows; ++r) {
    for (int64_t o = 0; o < actual.cols; ++o) {
      double magnitude = 0.0;
      for (int64_t i = 0; i < in; ++i) magnitude += std::fabs(double{x.row(r)[i]} * weight.data<float>()[o * in + i]);
      const double bias_term = bias != nullptr ? std::fabs(bias[o]) : 0.0;
      const double bound = (relative + (in + 2) * FLT_EPSILON) * magnitude + FLT_EPSILON * bias_term + FLT_MIN;
      const double error = std::fabs(double{actual.row(r)[o]} - expected.row(r)[o]);
      worst = std::max(worst, std::isnan(error) ? INFINITY : error / bound);
    }
  }
  return worst;
}

TEST(LinearBf16, MatchesReferenceOnRaggedBatches) {
  struct Features {
    int64_t in, out;
  };
  // Odd in_features (a half pair), out below / at / past a 48-wide panel, depth within one block of 256 inputs
  // and across several with a partial last one.
  for (const Features features : {Features{1, 3}, Features{7, 5}, Features{64, 96}, Features{577, 40},
                                  Features{300, 200}}) {
    const Bf16Weight w = make_weight(testing::random_tensor({features.out, features.in}, 22));
    const Tensor bias = testing::random_tensor({features.out}, 23);
    for (const LinearBf16Path path : paths_here()) {
      for (const auto& length_case : testing::ragged_length_cases()) {
        const int64_t rows = NestedTensor::from_lengths(length_case.lengths, {features.in}).num_tokens();
        const Tensor x = testing::random_tensor({rows, features.in}, 21, -2.0f, 2.0f);
        Tensor actual({rows, features.out});
        run(x.matrix(), w, features.out, bias.data<float>(), actual.matrix(), path);
        // The kernel's arithmetic: exact products of bf16 values summed in f32.
        const Tensor x_bf16 = rounded_to_bf16(x.matrix());
        Tensor exact({rows, features.out});
        kernels::reference::linear(x_bf16.matrix(), w.dequantized.data<float>(), bias.data<float>(), exact.matrix());
        EXPECT_LE(worst_error_over_bound(x_bf16.matrix(), w.dequantized, bias.data<float>(), actual.matrix(),
                                         exact.matrix(), 0.0),
                  1.0)
            << kernels::cpu::linear_bf16_path_name(path) << " " << length_case.name << " in " << features.in;
        // Against f32 activations: the stated error of rounding x to bf16 (2^-8 relative) on top.
        Tensor from_f32_x({rows, features.out});
        kernels::reference::linear(x.matrix(), w.dequantized.data<float>(), bias.data<float>(), from_f32_x.matrix());
        EXPECT_LE(worst_error_over_bound(x.matrix(), w.dequantized, bias.data<float>(), actual.matrix(),
                                         from_f32_x.matrix(), std::ldexp(1.0, -8)),
                  1.0)
            << kernels::cpu::linear_bf16_path_name(path) << " " << length_case.name << " in " << features.in;
      }
    }
  }
}

// The batch-invariance contract, per path: a row's bits do not depend on the other rows, where it sits or the
// thread count. (The two paths agree to the accumulation bound, not necessarily in bits: vdpbf16ps flushes
// denormals, and its rounding of the pair's two products is the hardware's.)
TEST(LinearBf16, RowResultIsIndependentOfBatch) {
  for (const auto& [in, out] : {std::pair<int64_t, int64_t>{2048, 160}, {1000, 600}, {577, 96}}) {
    const int64_t rows = 700;
    const Tensor x = testing::random_tensor({rows, in}, 41);
    const Bf16Weight w = make_weight(testing::random_tensor({out, in}, 42));
    const Tensor bias = testing::random_tensor({out}, 43);
    for (const LinearBf16Path path : paths_here()) {
      testing::expect_windows_match_whole_batch(
          x.matrix(), out,
          [&](ConstMatrixView x_rows, MatrixView part) { run(x_rows, w, out, bias.data<float>(), part, path); },
          std::string(kernels::cpu::linear_bf16_path_name(path)) + " in " + std::to_string(in) + " out " +
              std::to_string(out));
    }
  }
}

// Where the CPU has AMX, its kernel is the one ops::linear takes (it passed the self-check against the vector
// path that guards a kernel written without AMX hardware).
TEST(LinearBf16, AmxIsChosenWhereTheCpuHasIt) {
  if (!kernels::cpu::amx_bf16_available()) GTEST_SKIP() << "no AMX-BF16 on this CPU (or the OS refused its tiles)";
  EXPECT_EQ(kernels::cpu::best_linear_bf16_path(), LinearBf16Path::amx_bf16)
      << kernels::cpu::linear_bf16_path_name(kernels::cpu::best_linear_bf16_path());
  EXPECT_EQ(ops::linear_path(ops::WeightType::bf16), "amx-bf16 (own AMX tiles)");
}

// Through ops: PackedWeight(weight, bf16) rounds the weight once, unpacks to the rounded values, reports its
// type and size, and ops::linear takes the CPU's best path (its bits equal the kernel's on that path).
TEST(LinearBf16, PackedWeightThroughOps) {
  const Tensor weight = testing::random_tensor({203, 151}, 51);
  const Tensor bias = testing::random_tensor({203}, 52);
  const ops::PackedWeight packed(weight, ops::WeightType::bf16);
  EXPECT_EQ(packed.type(), ops::WeightType::bf16);
  EXPECT_EQ(packed.numel(), weight.numel());
  EXPECT_EQ(packed.nbytes(), static_cast<size_t>(5 * 48 * 76 * 4));  // 5 panels x 76 pairs x 48 u32
  const Tensor unpacked = packed.unpack();
  for (int64_t i = 0; i < weight.numel(); ++i) {
    ASSERT_EQ(unpacked.data<float>()[i], bf16_to_f32(f32_to_bf16(weight.data<float>()[i]))) << i;
  }
  const Tensor x = testing::random_tensor({141, 151}, 53);
  Tensor from_ops({141, 203});
  ops::linear(x, packed, &bias, from_ops);
  const Bf16Weight w = make_weight(weight);
  Tensor from_kernel({141, 203});
  run(x.matrix(), w, 203, bias.data<float>(), from_kernel.matrix(), kernels::cpu::best_linear_bf16_path());
  EXPECT_TRUE(testing::rows_bit_equal(from_ops.matrix(), from_kernel.matrix()));

  Tensor wrong_out({141, 202});
  EXPECT_THROW(ops::linear(x, packed, &bias, wrong_out), InvalidArgument);
  EXPECT_EQ(ops::parse_weight_type("bf16"), ops::WeightType::bf16);
  EXPECT_EQ(ops::parse_weight_type("f32"), ops::WeightType::f32);
  EXPECT_THROW(ops::parse_weight_type("q3_x"), InvalidArgument);
  EXPECT_FALSE(ops::linear_path(ops::WeightType::bf16).empty());
}

TEST(LinearBf16, EmptyShapes) {
  const Tensor bias = testing::random_tensor({4}, 2);
  const ops::PackedWeight packed(testing::random_tensor({4, 3}, 1), ops::WeightType::bf16);
  Tensor no_rows_x({0, 3});
  Tensor no_rows_out({0, 4});
  EXPECT_NO_THROW(ops::linear(no_rows_x, packed, &bias, no_rows_out));
  const ops::PackedWeight empty(Tensor({4, 0}), ops::WeightType::bf16);
  const Tensor x({5, 0});
  Tensor out({5, 4});
  ops::linear(x, empty, &bias, out);
  for (int64_t r = 0; r < 5; ++r) {
    for (int64_t o = 0; o < 4; ++o) EXPECT_EQ(out.data<float>()[r * 4 + o], bias.data<float>()[o]);
  }
}

}  // namespace
}  // namespace jagged
