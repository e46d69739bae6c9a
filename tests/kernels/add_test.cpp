#include "kernels/add.h"

#include <gtest/gtest.h>

#include <cstring>

#include "jagged/nested_tensor.h"
#include "jagged/ops.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

TEST(Add, MatchesReferenceOnRaggedBatches) {
  for (const int64_t dim : {1, 7, 64, 576}) {
    for (const auto& length_case : testing::ragged_length_cases()) {
      const int64_t rows = NestedTensor::from_lengths(length_case.lengths, {dim}).num_tokens();
      Tensor actual = testing::random_tensor({rows, dim}, 5, -10.0f, 10.0f);
      const Tensor y = testing::random_tensor({rows, dim}, 6, -10.0f, 10.0f);
      Tensor expected = actual.clone();
      kernels::reference::add(expected.data<float>(), y.data<float>(), expected.numel());
      ops::add(actual, y);
      // One f32 addition per element, correctly rounded in both: bit-identical.
      EXPECT_EQ(std::memcmp(actual.data<float>(), expected.data<float>(), actual.nbytes()), 0)
          << length_case.name << " dim " << dim;
    }
  }
}

TEST(Add, RejectsMismatchedShapesAndTypes) {
  Tensor x = testing::random_tensor({4, 8}, 1);
  EXPECT_THROW(ops::add(x, testing::random_tensor({4, 7}, 2)), InvalidArgument);
  EXPECT_THROW(ops::add(x, testing::random_tensor({32}, 2)), InvalidArgument);
  EXPECT_THROW(ops::add(x, Tensor::zeros({4, 8}, DType::i32)), InvalidArgument);
  Tensor ints = Tensor::zeros({4, 8}, DType::i32);
  EXPECT_THROW(ops::add(ints, Tensor::zeros({4, 8}, DType::i32)), InvalidArgument);
  Tensor undefined;
  EXPECT_THROW(ops::add(undefined, x), InvalidArgument);
}

}  // namespace
}  // namespace jagged
