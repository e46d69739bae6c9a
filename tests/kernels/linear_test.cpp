#include "kernels/linear.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>

#include "jagged/nested_tensor.h"
#include "jagged/ops.h"
#include "jagged/threads.h"
#include "testing/linear.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

// Worst case of |fast - exact| / bound over all outputs, where bound is the classic error bound of an f32 dot
// product of length K in any summation order, (K + 2) * eps * sum_k |x_k w_k|, plus one rounding of the bias.
double worst_error_over_bound(ConstMatrixView x, const Tensor& weight, const Tensor* bias, ConstMatrixView actual,
                              ConstMatrixView expected) {
  const int64_t in_features = x.cols;
  const float* w = weight.data<float>();
  double worst = 0.0;
  for (int64_t r = 0; r < x.rows; ++r) {
    for (int64_t o = 0; o < actual.cols; ++o) {
      double magnitude = 0.0;
      for (int64_t i = 0; i < in_features; ++i)
        magnitude += std::fabs(static_cast<double>(x.row(r)[i]) * w[o * in_features + i]);
      const double bias_term = bias != nullptr ? std::fabs(bias->data<float>()[o]) : 0.0;
      const double bound = (in_features + 2) * FLT_EPSILON * magnitude + FLT_EPSILON * bias_term + FLT_MIN;
      const double error = std::fabs(static_cast<double>(actual.row(r)[o]) - expected.row(r)[o]);
      worst = std::max(worst, std::isnan(error) ? INFINITY : error / bound);
    }
  }
  return worst;
}

TEST(Linear, MatchesReferenceOnRaggedBatches) {
  struct Features {
    int64_t in, out;
  };
    // Out features below, at and past a panel with a narrower last one; in features within one depth block and
  // across several with a partial last one.
  for (const Features features :
       {Features{1, 3}, Features{7, 5}, Features{64, 96}, Features{576, 40}, Features{300, 200}}) {
    for (const bool with_bias : {false, true}) {
      for (const auto& length_case : testing::ragged_length_cases()) {
        const NestedTensor lengths = NestedTensor::from_lengths(length_case.lengths, {features.in});
        const int64_t rows = lengths.num_tokens();
        const Tensor x = testing::random_tensor({rows, features.in}, 21, -2.0f, 2.0f);
        const Tensor weight = testing::random_tensor({features.out, features.in}, 22);
        const Tensor bias = testing::random_tensor({features.out}, 23);
        const Tensor* bias_ptr = with_bias ? &bias : nullptr;
        Tensor expected({rows, features.out});
        Tensor actual({rows, features.out});
        kernels::reference::linear(x.matrix(), weight.data<float>(), with_bias ? bias.data<float>() : nullptr,
                                   expected.matrix());
        ops::linear(x, weight, bias_ptr, actual);
        EXPECT_LE(worst_error_over_bound(x.matrix(), weight, bias_ptr, actual.matrix(), expected.matrix()), 1.0)
            << length_case.name << " in " << features.in << " out " << features.out << " bias " << with_bias;
      }
    }
  }
}

// x is the middle band of a wider matrix (as Q inside a fused QKV buffer); out is a band of another. The
// columns outside out's band must stay untouched.
TEST(Linear, StridedViewsMatchReferenceAndStayInTheirBand) {
  const int64_t rows = 45;
  const int64_t in_features = 33;
  const int64_t out_features = 20;
  Tensor x_wide = testing::random_tensor({rows, 3 * in_features}, 31);
  Tensor out_wide = Tensor::zeros({rows, out_features + 7});
  const float sentinel = 12345.0f;
  std::fill_n(out_wide.data<float>(), out_wide.numel(), sentinel);
  const Tensor weight = testing::random_tensor({out_features, in_features}, 32);
  const Tensor bias = testing::random_tensor({out_features}, 33);
  const ConstMatrixView x = x_wide.matrix().columns(in_features, 2 * in_features);
  const MatrixView out = out_wide.matrix().columns(3, 3 + out_features);
  ops::linear(x, weight, &bias, out);
  Tensor expected({rows, out_features});
  kernels::reference::linear(x, weight.data<float>(), bias.data<float>(), expected.matrix());
  EXPECT_LE(worst_error_over_bound(x, weight, &bias, out, expected.matrix()), 1.0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < out_wide.dim(1); ++c) {
      if (c >= 3 && c < 3 + out_features) continue;
      ASSERT_EQ(out_wide.data<float>()[r * out_wide.dim(1) + c], sentinel) << "row " << r << " col " << c;
    }
  }
}

TEST(Linear, EmptyShapes) {
  const Tensor weight = testing::random_tensor({4, 3}, 1);
  const Tensor bias = testing::random_tensor({4}, 2);
  Tensor no_rows_x({0, 3});
  Tensor no_rows_out({0, 4});
  EXPECT_NO_THROW(ops::linear(no_rows_x, weight, &bias, no_rows_out));

  // in_features = 0: an empty sum, so out = bias.
  const Tensor empty_weight({4, 0});
  const Tensor x({5, 0});
  Tensor out({5, 4});
  ops::linear(x, empty_weight, &bias, out);
  for (int64_t r = 0; r < 5; ++r) {
    for (int64_t o = 0; o < 4; ++o) EXPECT_EQ(out.data<float>()[r * 4 + o], bias.data<float>()[o]);
  }
}

// The batch-invariance contract: a row's bits do not depend on how many other rows share the call, where it
// sits, or how many threads run. Shapes chosen where one plain oneDNN call is NOT invariant on AVX-512:
// K = 2048 (oneDNN splits K across threads for small M) and K = 1000 (its no-copy kernel for some M).
TEST(Linear, RowResultIsIndependentOfBatch) {
  struct Shape2 {
    int64_t in, out;
  };
  for (const Shape2 shape : {Shape2{2048, 160}, Shape2{1000, 600}, Shape2{576, 96}}) {
    const int64_t rows = 700;
    const Tensor x = testing::random_tensor({rows, shape.in}, 41);
    const Tensor weight = testing::random_tensor({shape.out, shape.in}, 42);
    const Tensor bias = testing::random_tensor({shape.out}, 43);
    testing::expect_windows_match_whole_batch(
        x.matrix(), shape.out,
        [&](ConstMatrixView x_rows, MatrixView out) { ops::linear(x_rows, weight, &bias, out); },
        "in " + std::to_string(shape.in) + " out " + std::to_string(shape.out));
    Tensor all({rows, shape.out});
    ops::linear(x, weight, &bias, all);
    // A strided view of the same values (x inside a wider buffer) gives the same bits too.
    Tensor wide({rows, shape.in + 5});
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(wide.data<float>() + r * (shape.in + 5) + 5, x.data<float>() + r * shape.in,
                  static_cast<size_t>(shape.in) * sizeof(float));
    }
    Tensor from_band({rows, shape.out});
    ops::linear(wide.matrix().columns(5, 5 + shape.in), weight, &bias, from_band.matrix());
    EXPECT_TRUE(testing::rows_bit_equal(from_band.matrix(), all.matrix())) << "in " << shape.in << " out " << shape.out;
  }
}

// A weight packed once gives the same bits as packing on every call, unpacks to itself, and is checked like a
// plain weight.
TEST(Linear, PackedWeight) {
  const Tensor weight = testing::random_tensor({203, 150}, 51);
  const Tensor bias = testing::random_tensor({203}, 52);
  const ops::PackedWeight packed(weight);
  EXPECT_EQ(packed.out_features(), 203);
  EXPECT_EQ(packed.in_features(), 150);
  EXPECT_EQ(packed.numel(), weight.numel());
  const Tensor unpacked = packed.unpack();
  ASSERT_EQ(unpacked.shape(), weight.shape());
  EXPECT_EQ(std::memcmp(unpacked.data<float>(), weight.data<float>(), static_cast<size_t>(weight.nbytes())), 0);

  const Tensor x = testing::random_tensor({141, 150}, 53);
  Tensor from_packed({141, 203});
  Tensor from_plain({141, 203});
  ops::linear(x, packed, &bias, from_packed);
  ops::linear(x, weight, &bias, from_plain);
  EXPECT_TRUE(testing::rows_bit_equal(from_packed.matrix(), from_plain.matrix()));

  Tensor wrong_out({141, 202});
  EXPECT_THROW(ops::linear(x, packed, &bias, wrong_out), InvalidArgument);
  const Tensor wrong_x = testing::random_tensor({141, 149}, 54);
  EXPECT_THROW(ops::linear(wrong_x, packed, &bias, from_packed), InvalidArgument);
  EXPECT_THROW(ops::linear(x, ops::PackedWeight(), nullptr, from_packed), InvalidArgument);
  EXPECT_THROW(ops::PackedWeight(Tensor::zeros({5, 8}, DType::i32)), InvalidArgument);
  const Tensor undefined;
  EXPECT_THROW(ops::PackedWeight{undefined}, InvalidArgument);
}

TEST(Linear, RejectsBadArguments) {
  const Tensor x = testing::random_tensor({6, 8}, 1);
  const Tensor weight = testing::random_tensor({5, 8}, 2);
  const Tensor bias = testing::random_tensor({5}, 3);
  Tensor out({6, 5});
  EXPECT_NO_THROW(ops::linear(x, weight, &bias, out));

  const Tensor wrong_in = testing::random_tensor({5, 7}, 4);
  EXPECT_THROW(ops::linear(x, wrong_in, &bias, out), InvalidArgument);
  Tensor wrong_out_cols({6, 4});
  EXPECT_THROW(ops::linear(x, weight, &bias, wrong_out_cols), InvalidArgument);
  Tensor wrong_out_rows({5, 5});
  EXPECT_THROW(ops::linear(x, weight, &bias, wrong_out_rows), InvalidArgument);
  const Tensor wrong_bias = testing::random_tensor({4}, 5);
  EXPECT_THROW(ops::linear(x, weight, &wrong_bias, out), InvalidArgument);
  const Tensor weight_rank3 = testing::random_tensor({5, 8, 1}, 6);
  EXPECT_THROW(ops::linear(x, weight_rank3, nullptr, out), InvalidArgument);
  const Tensor int_weight = Tensor::zeros({5, 8}, DType::i32);
  EXPECT_THROW(ops::linear(x, int_weight, nullptr, out), InvalidArgument);
  const Tensor x_rank1 = testing::random_tensor({8}, 7);
  EXPECT_THROW(ops::linear(x_rank1, weight, nullptr, out), InvalidArgument);
  const Tensor int_x = Tensor::zeros({6, 8}, DType::i32);
  EXPECT_THROW(ops::linear(int_x, weight, nullptr, out), InvalidArgument);
  const Tensor undefined;
  EXPECT_THROW(ops::linear(x, undefined, nullptr, out), InvalidArgument);

  // Views: a row stride shorter than a row, and out overlapping x.
  Tensor buffer = testing::random_tensor({6, 16}, 8);
  const ConstMatrixView short_stride{buffer.data<float>(), 6, 8, 4};
  EXPECT_THROW(ops::linear(short_stride, weight, nullptr, out.matrix()), InvalidArgument);
  const ConstMatrixView x_view = buffer.matrix().columns(0, 8);
  const MatrixView overlapping = buffer.matrix().columns(8, 13);
  EXPECT_NO_THROW(ops::linear(x_view, weight, nullptr, overlapping));  // disjoint bands of one buffer
  const MatrixView aliasing = buffer.matrix().columns(4, 9);
  EXPECT_THROW(ops::linear(x_view, weight, nullptr, aliasing), InvalidArgument);
  const ConstMatrixView no_data{nullptr, 6, 8, 8};
  EXPECT_THROW(ops::linear(no_data, weight, nullptr, out.matrix()), InvalidArgument);
  const ConstMatrixView negative_rows{buffer.data<float>(), -1, 8, 16};
  const MatrixView no_out{out.data<float>(), -1, 5, 5};
  EXPECT_THROW(ops::linear(negative_rows, weight, nullptr, no_out), InvalidArgument);
}

}  // namespace
}  // namespace jagged
