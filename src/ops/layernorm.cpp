#include "kernels/layernorm.h"
#include "jagged/ops.h"

namespace jagged::ops {

void layernorm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps, Tensor& out) {
  if (!x.defined() || x.rank() != 2 || x.dtype() != DType::f32) {
    throw InvalidArgument(concat("layernorm: x must be [rows, dim] f32, got ", shape_string(x.shape())));
  }
  check_shape(weight, {x.dim(1)}, "layernorm weight");
  check_shape(bias, {x.dim(1)}, "layernorm bias");
  check_shape(out, x.shape(), "layernorm out");
  if (!(eps > 0.0f)) throw InvalidArgument(concat("layernorm: eps must be positive, got ", eps));
  kernels::cpu::layernorm(x.data<float>(), weight.data<float>(), bias.data<float>(), x.dim(0), x.dim(1), eps,
                          out.data<float>());
}

}  // namespace jagged::ops
