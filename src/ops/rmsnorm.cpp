#include "kernels/rmsnorm.h"
#include "jagged/ops.h"

namespace jagged::ops {

void rmsnorm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) {
  if (x.rank() != 2) throw InvalidArgument(concat("rmsnorm: x must be [rows, dim], got ", shape_string(x.shape())));
  check_shape(weight, {x.dim(1)}, "rmsnorm weight");
  check_shape(out, x.shape(), "rmsnorm out");
  if (!(eps > 0.0f)) throw InvalidArgument(concat("rmsnorm: eps must be positive, got ", eps));
  kernels::cpu::rmsnorm(x.data<float>(), weight.data<float>(), x.dim(0), x.dim(1), eps, out.data<float>());
}

}  // namespace jagged::ops
