#include "kernels/embedding.h"
#include "jagged/ops.h"

namespace jagged::ops {

void embedding(const Tensor& token_ids, const Tensor& table, Tensor& out) {
  if (!token_ids.defined() || token_ids.rank() != 1 || token_ids.dtype() != DType::i32) {
    throw InvalidArgument(concat("embedding: token_ids must be [num_tokens] i32, got ", shape_string(token_ids.shape()),
                                 " ", dtype_name(token_ids.dtype())));
  }
  if (!table.defined() || table.rank() != 2 || table.dtype() != DType::f32) {
    throw InvalidArgument(concat("embedding: table must be [vocab_size, dim] f32, got ", shape_string(table.shape()),
                                 " ", dtype_name(table.dtype())));
  }
  const int64_t num_tokens = token_ids.dim(0);
  const int64_t vocab_size = table.dim(0);
  check_shape(out, {num_tokens, table.dim(1)}, "embedding out");
  const int32_t* ids = token_ids.data<int32_t>();
  for (int64_t t = 0; t < num_tokens; ++t) {
    if (ids[t] < 0 || ids[t] >= vocab_size) {
      throw InvalidArgument(
          concat("embedding: token id ", ids[t], " at position ", t, " is outside [0, vocab_size = ", vocab_size, ")"));
    }
  }
  kernels::cpu::embedding(ids, num_tokens, table.data<float>(), table.dim(1), out.data<float>());
}

}  // namespace jagged::ops
