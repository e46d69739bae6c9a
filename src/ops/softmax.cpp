#include "kernels/softmax.h"
#include "jagged/ops.h"

namespace jagged::ops {

void softmax(Tensor& x) {
  if (!x.defined() || x.rank() != 2 || x.dtype() != DType::f32) {
    throw InvalidArgument(concat("softmax: x must be [rows, cols] f32, got ", shape_string(x.shape())));
  }
  kernels::cpu::softmax(x.data<float>(), x.dim(0), x.dim(1));
}

}  // namespace jagged::ops
