#include "kernels/add.h"
#include "jagged/ops.h"

namespace jagged::ops {

void add(Tensor& x, const Tensor& y) {
  if (!x.defined()) throw InvalidArgument("add: x is undefined");
  check_shape(y, x.shape(), "add y", x.dtype());
  if (x.dtype() != DType::f32) throw InvalidArgument(concat("add: x must be f32, got ", dtype_name(x.dtype())));
  kernels::cpu::add(x.data<float>(), y.data<float>(), x.numel());
}

}  // namespace jagged::ops
