#include "kernels/linear.h"

namespace jagged::kernels::reference {

void linear(ConstMatrixView x, const float* weight, const float* bias, MatrixView out) {
  const int64_t in_features = x.cols;
  for (int64_t r = 0; r < x.rows; ++r) {
    const float* x_row = x.row(r);
    for (int64_t o = 0; o < out.cols; ++o) {
      const float* w_row = weight + o * in_features;
      double sum = bias != nullptr ? bias[o] : 0.0;
      for (int64_t i = 0; i < in_features; ++i) sum += static_cast<double>(x_row[i]) * w_row[i];
      out.row(r)[o] = static_cast<float>(sum);
    }
  }
}

}  // namespace jagged::kernels::reference
