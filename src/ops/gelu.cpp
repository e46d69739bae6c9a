#include "kernels/gelu.h"
#include "jagged/ops.h"

namespace jagged::ops {

void gelu(Tensor& x, GeluForm form) {
  if (!x.defined() || x.dtype() != DType::f32) {
    throw InvalidArgument(
        concat("gelu: x must be a defined f32 tensor, got ", shape_string(x.shape()), " ", dtype_name(x.dtype())));
  }
  switch (form) {
    case GeluForm::erf:
      kernels::cpu::gelu_erf(x.data<float>(), x.numel());
      return;
    case GeluForm::tanh:
      kernels::cpu::gelu_tanh(x.data<float>(), x.numel());
      return;
  }
  throw InvalidArgument(concat("gelu: unknown form ", static_cast<int>(form)));
}

}  // namespace jagged::ops
