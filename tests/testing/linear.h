// Shared checks of the linear kernels against kernels::reference::linear (f64 accumulation).
#pragma once

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

#include "jagged/nested_tensor.h"
#include "jagged/ops.h"
#include "jagged/tensor.h"
#include "jagged/threads.h"
#include "kernels/linear.h"
#include "testing/ragged.h"
#include "testing/scoped_env.h"

namespace jagged::testing {

// Whether two views hold the same floats, bit for bit.
inline bool rows_bit_equal(ConstMatrixView a, ConstMatrixView b) {
  if (a.rows != b.rows || a.cols != b.cols) return false;
  for (int64_t r = 0; r < a.rows; ++r) {
    if (std::memcmp(a.row(r), b.row(r), static_cast<size_t>(a.cols) * sizeof(float)) != 0) return false;
  }
  return true;
}

// Every actual[r, o] within (in + 2) FLT_EPSILON (|bias[o]| + sum_i |x[r, i] w[o, i]|) of expected[r, o]: the
// f32 rounding of an in-long dot product in any order. x [rows, in]; weight [out, in]; bias [out].
inline void expect_within_reference_bound(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                          const Tensor& actual, const Tensor& expected, const std::string& what) {
  const int64_t rows = x.dim(0);
  const int64_t in = x.dim(1);
  const int64_t out = weight.dim(0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < out; ++o) {
      double magnitude = std::fabs(bias.data<float>()[o]);
      for (int64_t i = 0; i < in; ++i) {
        magnitude += std::fabs(double{x.data<float>()[r * in + i]} * weight.data<float>()[o * in + i]);
      }
      ASSERT_LE(std::fabs(double{actual.data<float>()[r * out + o]} - expected.data<float>()[r * out + o]),
                static_cast<double>(in + 2) * FLT_EPSILON * magnitude + FLT_MIN)
          << what << " row " << r << " out " << o;
    }
  }
}

// A quantized weight's kernel on every ragged length case (0, 1, many rows, past a tile): bit-equal to the f32
// kernel on its dequantized weight (unpack), and within the reference's bound on it.
inline void expect_linear_matches_dequantized(const ops::PackedWeight& quantized, const Tensor& bias,
                                              const std::string& what) {
  const int64_t in = quantized.in_features();
  const int64_t out = quantized.out_features();
  const Tensor dequantized = quantized.unpack();
  const ops::PackedWeight f32(dequantized);
  for (const auto& length_case : ragged_length_cases()) {
    const int64_t rows = NestedTensor::from_lengths(length_case.lengths, {in}).num_tokens();
    const Tensor x = random_tensor({rows, in}, 21, -2.0f, 2.0f);
    Tensor actual({rows, out});
    Tensor from_f32({rows, out});
    Tensor expected({rows, out});
    ops::linear(x, quantized, &bias, actual);
    ops::linear(x, f32, &bias, from_f32);
    kernels::reference::linear(x.matrix(), dequantized.data<float>(), bias.data<float>(), expected.matrix());
    const std::string where = what + " " + length_case.name + " in " + std::to_string(in);
    EXPECT_TRUE(rows_bit_equal(actual.matrix(), from_f32.matrix())) << where;
    expect_within_reference_bound(x, dequantized, bias, actual, expected, where);
  }
}

// Calls body(name) under each order in which the packed GEMMs walk a decode batch's weights (kernels/linear.h),
// then restores the default.
template <typename Body>
void for_each_decode_order(const Body& body) {
  using kernels::cpu::LinearDecodeOrder;
  for (const auto& [order, name] : {std::pair{LinearDecodeOrder::blocked, "blocked order"},
                                    std::pair{LinearDecodeOrder::streamed, "streamed order"}}) {
    kernels::cpu::set_linear_decode_order(order);
    body(std::string(name));
  }
  kernels::cpu::set_linear_decode_order(LinearDecodeOrder::streamed);
}

// Rows of x computed alone, in windows of 1 to rows - 1 rows, with 1-3 threads and in both decode orders, give the
// bits they get in one call over all rows with the current thread count: batch invariance. compute(x_rows, out)
// computes out [x_rows.rows, out_features] for x_rows, a band of x [rows >= 230, in].
template <typename Compute>
void expect_windows_match_whole_batch(ConstMatrixView x, int64_t out_features, const Compute& compute,
                                      const std::string& what) {
  const int saved_threads = num_threads();
  const int64_t rows = x.rows;
  Tensor all({rows, out_features});
  compute(x, all.matrix());
  for_each_decode_order([&](const std::string& order) {
    for (const auto& [begin, count] : {std::pair<int64_t, int64_t>{0, 1}, {17, 1}, {3, 4}, {5, 15}, {3, 37},
                                      {100, 129}, {1, rows - 1}, {0, rows}}) {
      for (const int threads : {1, 2, 3}) {
        set_num_threads(threads);
        Tensor part({count, out_features});
        compute(x.row_range(begin, begin + count), part.matrix());
        EXPECT_TRUE(rows_bit_equal(part.matrix(), all.matrix().row_range(begin, begin + count)))
            << what << ": rows [" << begin << ", " << begin + count << ") with " << threads << " threads, " << order
            << ", differ from the same rows in a " << rows << "-row call";
      }
    }
  });
  set_num_threads(saved_threads);
}

// The batch-invariance check above through ops::linear on a packed weight.
inline void expect_rows_independent_of_batch(const ops::PackedWeight& weight, const Tensor& x, const Tensor& bias,
                                             const std::string& what) {
  expect_windows_match_whole_batch(
      x.matrix(), weight.out_features(),
      [&](ConstMatrixView x_rows, MatrixView out) { ops::linear(x_rows, weight, &bias, out); }, what);
}

}  // namespace jagged::testing
