#include "kernels/pooling.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>

#include "jagged/nested_tensor.h"
#include "jagged/pooling.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

constexpr Pooling kAllPoolings[] = {Pooling::cls, Pooling::mean, Pooling::max};

double max_abs(const Tensor& tensor) {
  double worst = 0.0;
  for (int64_t i = 0; i < tensor.numel(); ++i) worst = std::max(worst, std::fabs(double{tensor.data<float>()[i]}));
  return worst;
}

// cls and max select input values: exact. A mean of n f32 values summed in order errs by at most
// (n - 1) * (eps / 2) * max|x|, plus the division's rounding.
double pooling_tolerance(Pooling pooling, int64_t max_seqlen, double scale) {
  return pooling == Pooling::mean ? (max_seqlen + 1) * FLT_EPSILON * scale : 0.0;
}

TEST(Pooling, MatchesReferenceOnRaggedBatches) {
  for (const int64_t dim : {1, 7, 64, 384, 1000}) {  // 1000: several column bands and a tail
    for (const auto& length_case : testing::ragged_length_cases()) {
      const NestedTensor batch = NestedTensor::from_lengths(length_case.lengths, {dim});
      const int64_t num_seqs = batch.num_seqs();
      const Tensor x = testing::random_tensor({batch.num_tokens(), dim}, 21, -3.0f, 3.0f);
      for (const Pooling pooling : kAllPoolings) {
        Tensor expected({num_seqs, dim});
        Tensor actual({num_seqs, dim});
        kernels::reference::pool(x.data<float>(), dim, batch.cu_seqlens().data(), num_seqs, pooling,
                                 expected.data<float>());
        ops::pool(x, batch.cu_seqlens(), pooling, actual);
        EXPECT_LE(testing::max_abs_diff(actual.data<float>(), expected.data<float>(), num_seqs * dim),
                  pooling_tolerance(pooling, batch.max_seqlen(), max_abs(x)))
            << length_case.name << " dim " << dim << " " << pooling_name(pooling);
      }
    }
  }
}

TEST(Pooling, HandComputedWithEmptySequence) {
  // Sequences: [[1, 2], [3, -4]], [[5, 6]], [] (empty: zeros).
  const std::vector<float> values{1, 2, 3, -4, 5, 6};
  const Tensor x = Tensor::from_floats(values, {3, 2});
  const std::vector<int32_t> cu_seqlens{0, 2, 3, 3};
  const std::vector<std::pair<Pooling, std::vector<float>>> cases{
      {Pooling::cls, {1, 2, 5, 6, 0, 0}}, {Pooling::mean, {2, -1, 5, 6, 0, 0}}, {Pooling::max, {3, 2, 5, 6, 0, 0}}};
  for (const auto& [pooling, expected] : cases) {
    Tensor out({3, 2});
    ops::pool(x, cu_seqlens, pooling, out);
    Tensor reference({3, 2});
    kernels::reference::pool(x.data<float>(), 2, cu_seqlens.data(), 3, pooling, reference.data<float>());
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(out.data<float>()[i], expected[i]) << pooling_name(pooling) << " element " << i;
      EXPECT_EQ(reference.data<float>()[i], expected[i]) << "reference " << pooling_name(pooling) << " element " << i;
    }
  }
}

TEST(Pooling, PaddedEqualsNestedAndNeverReadsPadding) {
  for (const int64_t dim : {5, 384}) {
    for (const auto& length_case : testing::ragged_length_cases()) {
      NestedTensor batch = NestedTensor::from_lengths(length_case.lengths, {dim});
      const Tensor x = testing::random_tensor({batch.num_tokens(), dim}, 5, -2.0f, 2.0f);
      std::memcpy(batch.values().raw_data(), x.raw_data(), x.nbytes());
      PaddedTensor padded = batch.to_padded(NAN);  // padding that would poison any result it reached
      padded.values.reshape({batch.num_seqs() * batch.max_seqlen(), dim});
      for (const Pooling pooling : kAllPoolings) {
        Tensor nested_out({batch.num_seqs(), dim});
        Tensor padded_out({batch.num_seqs(), dim});
        Tensor reference({batch.num_seqs(), dim});
        ops::pool(x, batch.cu_seqlens(), pooling, nested_out);
        ops::pool_padded(padded.values, padded.mask, pooling, padded_out);
        kernels::reference::pool_padded(padded.values.data<float>(), dim, padded.mask.data<uint8_t>(),
                                        batch.num_seqs(), batch.max_seqlen(), pooling, reference.data<float>());
        // Same tokens in the same order: bit-identical.
        EXPECT_EQ(std::memcmp(nested_out.raw_data(), padded_out.raw_data(), nested_out.nbytes()), 0)
            << length_case.name << " " << pooling_name(pooling);
        EXPECT_LE(testing::max_abs_diff(padded_out.data<float>(), reference.data<float>(), reference.numel()),
                  pooling_tolerance(pooling, batch.max_seqlen(), max_abs(x)))
            << length_case.name << " " << pooling_name(pooling);
      }
    }
  }
}

TEST(Pooling, SequenceResultIsIndependentOfBatch) {
  const std::vector<int64_t> lengths{40, 300, 1, 77};
  const NestedTensor batch = NestedTensor::from_lengths(lengths, {300});
  const Tensor x = testing::random_tensor({batch.num_tokens(), 300}, 8);
  for (const Pooling pooling : kAllPoolings) {
    Tensor all({4, 300});
    ops::pool(x, batch.cu_seqlens(), pooling, all);
    const int64_t begin = batch.cu_seqlens()[1];
    const Tensor alone_x = Tensor::from_floats(std::span(x.data<float>() + begin * 300, 300 * 300), {300, 300});
    const std::vector<int32_t> one{0, 300};
    Tensor alone({1, 300});
    ops::pool(alone_x, one, pooling, alone);
    EXPECT_EQ(std::memcmp(alone.data<float>(), all.data<float>() + 300, 300 * sizeof(float)), 0)
        << pooling_name(pooling);
  }
}

TEST(L2Normalize, MatchesReferenceAndHasUnitNorm) {
  for (const int64_t dim : {1, 7, 64, 384, 1000}) {
    const Tensor x = testing::random_tensor({33, dim}, 9, -4.0f, 4.0f);
    Tensor actual = x.clone();
    Tensor expected = x.clone();
    ops::l2_normalize(actual);
    kernels::reference::l2_normalize(expected.data<float>(), 33, dim);
    // Outputs are at most 1; the f32 sum of dim squares errs by ~dim * eps relative, halved by the sqrt.
    const double tolerance = (dim + 4) * FLT_EPSILON;
    EXPECT_LE(testing::max_abs_diff(actual.data<float>(), expected.data<float>(), x.numel()), tolerance) << dim;
    for (int64_t r = 0; r < 33; ++r) {
      double sum_squares = 0.0;
      for (int64_t i = 0; i < dim; ++i) sum_squares += std::pow(double{actual.data<float>()[r * dim + i]}, 2);
      EXPECT_NEAR(std::sqrt(sum_squares), 1.0, 2 * tolerance) << "dim " << dim << " row " << r;
    }
  }
}

TEST(L2Normalize, HandComputedAndZeroRowStaysZero) {
  const std::vector<float> values{3, 4, 0, 0, 0, -2};
  Tensor x = Tensor::from_floats(values, {3, 2});
  ops::l2_normalize(x);
  const std::vector<float> expected{0.6f, 0.8f, 0, 0, 0, -1};
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_FLOAT_EQ(x.data<float>()[i], expected[i]) << i;
  EXPECT_FALSE(std::signbit(x.data<float>()[2]));
}

TEST(Pooling, RejectsBadArguments) {
  const Tensor x = testing::random_tensor({5, 4}, 1);
  const std::vector<int32_t> cu_seqlens{0, 2, 5};
  Tensor out({2, 4});
  EXPECT_NO_THROW(ops::pool(x, cu_seqlens, Pooling::mean, out));
  const std::vector<int32_t> short_offsets{0, 2, 4};  // ends before the last token
  EXPECT_THROW(ops::pool(x, short_offsets, Pooling::mean, out), InvalidArgument);
  const std::vector<int32_t> decreasing{0, 3, 2, 5};
  Tensor out3({3, 4});
  EXPECT_THROW(ops::pool(x, decreasing, Pooling::mean, out3), InvalidArgument);
  EXPECT_THROW(ops::pool(x, std::vector<int32_t>{}, Pooling::mean, out), InvalidArgument);
  Tensor wrong_out({3, 4});
  EXPECT_THROW(ops::pool(x, cu_seqlens, Pooling::mean, wrong_out), InvalidArgument);
  EXPECT_THROW(ops::pool(x, cu_seqlens, static_cast<Pooling>(7), out), InvalidArgument);
  const Tensor flat = testing::random_tensor({20}, 1);
  EXPECT_THROW(ops::pool(flat, cu_seqlens, Pooling::cls, out), InvalidArgument);
  const std::vector<int32_t> ids(20, 1);
  const Tensor int_x = Tensor::from_ints(ids, {5, 4});
  EXPECT_THROW(ops::pool(int_x, cu_seqlens, Pooling::cls, out), InvalidArgument);

  const Tensor mask = Tensor::zeros({2, 3}, DType::u8);
  const Tensor padded_x = testing::random_tensor({6, 4}, 2);
  EXPECT_NO_THROW(ops::pool_padded(padded_x, mask, Pooling::max, out));
  EXPECT_THROW(ops::pool_padded(x, mask, Pooling::max, out), InvalidArgument);  // 5 rows, 6 positions
  EXPECT_THROW(ops::pool_padded(padded_x, Tensor::zeros({2, 3}), Pooling::max, out), InvalidArgument);  // f32 mask
  EXPECT_THROW(ops::pool_padded(padded_x, Tensor::zeros({6}, DType::u8), Pooling::max, out), InvalidArgument);
  EXPECT_THROW(ops::pool_padded(padded_x, mask, Pooling::max, wrong_out), InvalidArgument);

  Tensor rank3 = testing::random_tensor({2, 2, 2}, 3);
  EXPECT_THROW(ops::l2_normalize(rank3), InvalidArgument);
  EXPECT_THROW(parse_pooling("sum"), InvalidArgument);
  EXPECT_EQ(parse_pooling("max"), Pooling::max);
  EXPECT_EQ(parse_pooling(pooling_name(Pooling::cls)), Pooling::cls);
}

}  // namespace
}  // namespace jagged
