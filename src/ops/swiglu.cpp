#include "kernels/swiglu.h"
#include "jagged/ops.h"

namespace jagged::ops {

void swiglu(const Tensor& gate_up, Tensor& out) {
  if (!gate_up.defined() || gate_up.rank() != 2 || gate_up.dtype() != DType::f32 || gate_up.dim(1) % 2 != 0) {
    throw InvalidArgument(concat("swiglu: gate_up must be [rows, 2 * ffn_dim] f32, got ", shape_string(gate_up.shape()),
                                 " ", dtype_name(gate_up.dtype())));
  }
  const int64_t ffn_dim = gate_up.dim(1) / 2;
  check_shape(out, {gate_up.dim(0), ffn_dim}, "swiglu out");
  kernels::cpu::swiglu(gate_up.data<float>(), gate_up.dim(0), ffn_dim, out.data<float>());
}

}  // namespace jagged::ops
