#include "kernels/silu.h"
#include "jagged/ops.h"

namespace jagged::ops {

void silu(Tensor& x) {
  if (!x.defined() || x.dtype() != DType::f32) {
    throw InvalidArgument(
        concat("silu: x must be a defined f32 tensor, got ", shape_string(x.shape()), " ", dtype_name(x.dtype())));
  }
  kernels::cpu::silu(x.data<float>(), x.numel());
}

}  // namespace jagged::ops
