#include "kernels/swiglu.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>

#include "jagged/nested_tensor.h"
#include "jagged/ops.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

TEST(SwiGlu, MatchesReferenceOnRaggedBatches) {
  for (const int64_t ffn_dim : {1, 7, 64, 1536}) {
    for (const auto& length_case : testing::ragged_length_cases()) {
      const int64_t rows = NestedTensor::from_lengths(length_case.lengths, {ffn_dim}).num_tokens();
      const Tensor gate_up = testing::random_tensor({rows, 2 * ffn_dim}, 17, -12.0f, 12.0f);
      Tensor expected({rows, ffn_dim});
      Tensor actual({rows, ffn_dim});
      kernels::reference::swiglu(gate_up.data<float>(), rows, ffn_dim, expected.data<float>());
      ops::swiglu(gate_up, actual);
      // silu(gate) within 4 eps |gate| (see silu_test), times up, plus one rounding: 5 eps |gate| |up|.
      double worst = 0.0;
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t j = 0; j < ffn_dim; ++j) {
          const double gate = gate_up.data<float>()[r * 2 * ffn_dim + j];
          const double up = gate_up.data<float>()[r * 2 * ffn_dim + ffn_dim + j];
          const double bound = 5.0 * FLT_EPSILON * std::fabs(gate * up) + FLT_MIN;
          const double error = std::fabs(static_cast<double>(actual.data<float>()[r * ffn_dim + j]) -
                                         expected.data<float>()[r * ffn_dim + j]);
          worst = std::max(worst, std::isnan(error) ? INFINITY : error / bound);
        }
      }
      EXPECT_LE(worst, 1.0) << length_case.name << " ffn_dim " << ffn_dim;
    }
  }
}

// Gate in the first half, up in the second: swapping the halves must change the result.
TEST(SwiGlu, GateIsTheFirstHalf) {
  const Tensor gate_up = Tensor::from_floats(std::vector<float>{2.0f, 3.0f}, {1, 2});
  Tensor out({1, 1});
  ops::swiglu(gate_up, out);
  EXPECT_NEAR(out.data<float>()[0], 2.0 / (1.0 + std::exp(-2.0)) * 3.0, 8 * FLT_EPSILON);
}

TEST(SwiGlu, RejectsBadArguments) {
  const Tensor gate_up = testing::random_tensor({4, 8}, 1);
  Tensor out({4, 4});
  EXPECT_NO_THROW(ops::swiglu(gate_up, out));
  Tensor wrong_out({4, 8});
  EXPECT_THROW(ops::swiglu(gate_up, wrong_out), InvalidArgument);
  EXPECT_THROW(ops::swiglu(testing::random_tensor({4, 7}, 1), out), InvalidArgument);
  EXPECT_THROW(ops::swiglu(testing::random_tensor({32}, 1), out), InvalidArgument);
  EXPECT_THROW(ops::swiglu(Tensor::zeros({4, 8}, DType::i32), out), InvalidArgument);
}

}  // namespace
}  // namespace jagged
