#include "kernels/linear.h"

#include <cstdint>

#include "jagged/ops.h"

namespace jagged::ops {

namespace {

void check_view(ConstMatrixView view, const char* what) {
  if (view.rows < 0 || view.cols < 0) {
    throw InvalidArgument(concat("linear: ", what, " has negative extents [", view.rows, ", ", view.cols, "]"));
  }
  if (view.rows > 1 && view.row_stride < view.cols) {
    throw InvalidArgument(concat("linear: ", what, " row_stride ", view.row_stride, " < cols ", view.cols));
  }
  if (view.rows > 0 && view.cols > 0 && view.data == nullptr) {
    throw InvalidArgument(concat("linear: ", what, " [", view.rows, ", ", view.cols, "] has no data"));
  }
}

// Whether two strided views share an element. Exact for views with the same row stride (bands of one buffer,
// like x and the Q band of a fused QKV projection); conservative (address ranges) otherwise.
bool overlap(ConstMatrixView a, ConstMatrixView b) {
  if (a.rows == 0 || a.cols == 0 || b.rows == 0 || b.cols == 0) return false;
  const auto address = [](const float* pointer) { return static_cast<int64_t>(reinterpret_cast<uintptr_t>(pointer)); };
  const int64_t element = sizeof(float);
  const int64_t a_begin = address(a.data);
  const int64_t b_begin = address(b.data);
  const int64_t a_end = a_begin + ((a.rows - 1) * a.row_stride + a.cols) * element;
  const int64_t b_end = b_begin + ((b.rows - 1) * b.row_stride + b.cols) * element;
  if (a_end <= b_begin || b_end <= a_begin) return false;
  if (a.row_stride != b.row_stride || a.rows == 1 || b.rows == 1) return true;
  // Same stride: within one period of stride bytes, a covers [0, a.cols) and b [offset, offset + b.cols).
  const int64_t period = a.row_stride * element;
  const int64_t offset = (((b_begin - a_begin) % period) + period) % period;
  return offset < a.cols * element || offset + b.cols * element > period;
}

}  // namespace

void linear(ConstMatrixView x, const Tensor& weight, const Tensor* bias, MatrixView out) {
  if (!weight.defined() || weight.rank() != 2 || weight.dtype() != DType::f32) {
    throw InvalidArgument(concat("linear: weight must be [out_features, in_features] f32, got ",
                                 shape_string(weight.shape()), " ", dtype_name(weight.dtype())));
  }
  const int64_t out_features = weight.dim(0);
  const int64_t in_features = weight.dim(1);
  check_view(x, "x");
  check_view(out, "out");
  if (x.cols != in_features) {
    throw InvalidArgument(concat("linear: x has ", x.cols, " columns but weight ", shape_string(weight.shape()),
                                 " expects in_features = ", in_features));
  }
  if (out.rows != x.rows || out.cols != out_features) {
    throw InvalidArgument(
        concat("linear: out is [", out.rows, ", ", out.cols, "], expected [", x.rows, ", ", out_features, "]"));
  }
  if (bias != nullptr) check_shape(*bias, {out_features}, "linear bias");
  if (overlap(x, out)) throw InvalidArgument("linear: out overlaps x; the product cannot be computed in place");
  kernels::cpu::linear(x, weight.data<float>(), bias != nullptr ? bias->data<float>() : nullptr, out);
}

void linear(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out) {
  if (!x.defined() || x.rank() != 2) {
    throw InvalidArgument(concat("linear: x must be [rows, in_features], got ", shape_string(x.shape())));
  }
  if (!out.defined() || out.rank() != 2) {
    throw InvalidArgument(concat("linear: out must be [rows, out_features], got ", shape_string(out.shape())));
  }
  if (x.dtype() != DType::f32 || out.dtype() != DType::f32) {
    throw InvalidArgument(
        concat("linear: x and out must be f32, got ", dtype_name(x.dtype()), " and ", dtype_name(out.dtype())));
  }
  // Views from the shapes (Tensor::matrix() cannot tell the columns of a tensor with no rows).
  const ConstMatrixView x_view{x.data<float>(), x.dim(0), x.dim(1), x.dim(1)};
  const MatrixView out_view{out.data<float>(), out.dim(0), out.dim(1), out.dim(1)};
  linear(x_view, weight, bias, out_view);
}

}  // namespace jagged::ops
