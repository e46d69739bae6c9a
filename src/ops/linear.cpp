#include "kernels/linear.h"

#include <cstdint>
#include <utility>

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

void check_weight(const Tensor& weight) {
  if (!weight.defined() || weight.rank() != 2 || weight.dtype() != DType::f32) {
    throw InvalidArgument(concat("linear: weight must be [out_features, in_features] f32, got ",
                                 shape_string(weight.shape()), " ", dtype_name(weight.dtype())));
  }
}

void check_arguments(ConstMatrixView x, int64_t out_features, int64_t in_features, const Tensor* bias,
                     ConstMatrixView out) {
  check_view(x, "x");
  check_view(out, "out");
  if (x.cols != in_features) {
    throw InvalidArgument(concat("linear: x has ", x.cols, " columns but the weight [", out_features, ", ",
                                 in_features, "] expects in_features = ", in_features));
  }
  if (out.rows != x.rows || out.cols != out_features) {
    throw InvalidArgument(
        concat("linear: out is [", out.rows, ", ", out.cols, "], expected [", x.rows, ", ", out_features, "]"));
  }
  if (bias != nullptr) check_shape(*bias, {out_features}, "linear bias");
  if (overlap(x, out)) throw InvalidArgument("linear: out overlaps x; the product cannot be computed in place");
}

const float* bias_data(const Tensor* bias) { return bias != nullptr ? bias->data<float>() : nullptr; }

// Views from the shapes (Tensor::matrix() cannot tell the columns of a tensor with no rows).
std::pair<ConstMatrixView, MatrixView> matrix_views(const Tensor& x, Tensor& out) {
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
  return {ConstMatrixView{x.data<float>(), x.dim(0), x.dim(1), x.dim(1)},
          MatrixView{out.data<float>(), out.dim(0), out.dim(1), out.dim(1)}};
}

}  // namespace

PackedWeight::PackedWeight(const Tensor& weight) {
  check_weight(weight);
  out_features_ = weight.dim(0);
  in_features_ = weight.dim(1);
  packed_ = Tensor({kernels::cpu::packed_linear_floats(out_features_, in_features_)});
  kernels::cpu::pack_linear_weight(weight.data<float>(), out_features_, in_features_, packed_.data<float>());
}

Tensor PackedWeight::unpack() const {
  Tensor weight({out_features_, in_features_});
  if (defined()) kernels::cpu::unpack_linear_weight(data(), out_features_, in_features_, weight.data<float>());
  return weight;
}

void linear(ConstMatrixView x, const PackedWeight& weight, const Tensor* bias, MatrixView out) {
  if (!weight.defined()) throw InvalidArgument("linear: the packed weight is empty (default-constructed)");
  check_arguments(x, weight.out_features(), weight.in_features(), bias, out);
  kernels::cpu::linear_packed(x, weight.data(), weight.out_features(), bias_data(bias), out);
}

void linear(const Tensor& x, const PackedWeight& weight, const Tensor* bias, Tensor& out) {
  const auto [x_view, out_view] = matrix_views(x, out);
  linear(x_view, weight, bias, out_view);
}

void linear(ConstMatrixView x, const Tensor& weight, const Tensor* bias, MatrixView out) {
  check_weight(weight);
  check_arguments(x, weight.dim(0), weight.dim(1), bias, out);  // before paying for the packing
  linear(x, PackedWeight(weight), bias, out);
}

void linear(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out) {
  const auto [x_view, out_view] = matrix_views(x, out);
  linear(x_view, weight, bias, out_view);
}

}  // namespace jagged::ops
