// Shared checks of the linear kernels against kernels::reference::linear (f64 accumulation).
#pragma once

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <string>

#include "jagged/tensor.h"

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

}  // namespace jagged::testing
