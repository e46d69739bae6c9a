#include "kernels/argmax.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "jagged/nested_tensor.h"
#include "jagged/ops.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

TEST(Argmax, MatchesReferenceOnRaggedBatches) {
  for (const int64_t cols : {1, 7, 64, 300, 49152}) {
    for (const auto& length_case : testing::ragged_length_cases()) {
      const int64_t rows = NestedTensor::from_lengths(length_case.lengths, {1}).num_tokens();
      if (cols == 49152 && rows > 64) continue;  // vocab-sized rows: a few are enough
      // Values on a coarse grid, so ties are common and the first-index rule is exercised.
      Tensor x({rows, cols});
      std::mt19937_64 rng(23);
      std::uniform_int_distribution<int> level(-20, 20);
      for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>(level(rng));
      std::vector<int32_t> expected(static_cast<size_t>(rows));
      kernels::reference::argmax(x.data<float>(), rows, cols, expected.data());
      EXPECT_EQ(ops::argmax(x), expected) << length_case.name << " cols " << cols;
    }
  }
}

TEST(Argmax, TiesNansAndInfinities) {
  const float nan = NAN;
  const float inf = INFINITY;
  const std::vector<float> values = {
      1,    5,    5,   2,    5,     // tie: first of the 5s
      nan,  3,    nan, 3,    1,     // NaNs are skipped
      nan,  nan,  nan, nan,  nan,   // only NaNs: 0
      -inf, -inf, nan, -inf, -inf,  // all -inf: the first
      nan,  -inf, 2,   inf,  inf,   // +inf wins, first one
  };
  const Tensor x = Tensor::from_floats(values, {5, 5});
  std::vector<int32_t> expected(5);
  kernels::reference::argmax(x.data<float>(), 5, 5, expected.data());
  EXPECT_EQ(expected, (std::vector<int32_t>{1, 1, 0, 0, 3}));
  EXPECT_EQ(ops::argmax(x), expected);
  // The same cases across a vector boundary (lanes are 4 to 16 floats): the winner near the end of a row.
  Tensor long_row = Tensor::zeros({2, 37});
  long_row.data<float>()[36] = 1.0f;
  long_row.data<float>()[37 + 17] = 7.0f;
  long_row.data<float>()[37 + 33] = 7.0f;
  EXPECT_EQ(ops::argmax(long_row), (std::vector<int32_t>{36, 17}));
}

TEST(Argmax, RejectsBadArguments) {
  EXPECT_THROW(ops::argmax(Tensor({3, 0})), InvalidArgument);
  EXPECT_THROW(ops::argmax(testing::random_tensor({8}, 1)), InvalidArgument);
  EXPECT_THROW(ops::argmax(Tensor::zeros({2, 2}, DType::i32)), InvalidArgument);
  EXPECT_TRUE(ops::argmax(Tensor({0, 5})).empty());
  EXPECT_THROW(ops::argmax(std::span<const float>{}), InvalidArgument);  // the one-row form: an empty row
}

// The one-row form (the sampler's greedy path) gives each row's index of the batch form: rows of 1, 17 and 49152
// values (past every vector), ties to the first.
TEST(Argmax, OneRowEqualsTheBatchForm) {
  for (const int64_t cols : {int64_t{1}, int64_t{17}, int64_t{49152}}) {
    Tensor x = testing::random_tensor({3, cols}, 9, -5.0f, 5.0f);
    x.data<float>()[2 * cols + cols - 1] = 9.0f;  // the last row's largest at its end, twice when cols > 1
    x.data<float>()[2 * cols + cols / 2] = 9.0f;
    const std::vector<int32_t> batch = ops::argmax(x);
    for (int64_t r = 0; r < 3; ++r) {
      EXPECT_EQ(ops::argmax(std::span<const float>(x.data<float>() + r * cols, static_cast<size_t>(cols))), batch[r])
          << cols << " row " << r;
    }
    EXPECT_EQ(batch[2], cols / 2);
  }
}

}  // namespace
}  // namespace jagged
