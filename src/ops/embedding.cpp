#include "core/threads.h"
#include "kernels/embedding.h"
#include "jagged/ops.h"

namespace jagged::ops {

namespace {

// token_ids [num_tokens] i32, each in [0, vocab_size); out [num_tokens, dim].
const int32_t* checked_ids(const Tensor& token_ids, int64_t vocab_size, int64_t dim, const Tensor& out) {
  if (!token_ids.defined() || token_ids.rank() != 1 || token_ids.dtype() != DType::i32) {
    throw InvalidArgument(concat("embedding: token_ids must be [num_tokens] i32, got ", shape_string(token_ids.shape()),
                                 " ", dtype_name(token_ids.dtype())));
  }
  const int64_t num_tokens = token_ids.dim(0);
  check_shape(out, {num_tokens, dim}, "embedding out");
  const int32_t* ids = token_ids.data<int32_t>();
  for (int64_t t = 0; t < num_tokens; ++t) {
    if (ids[t] < 0 || ids[t] >= vocab_size) {
      throw InvalidArgument(
          concat("embedding: token id ", ids[t], " at position ", t, " is outside [0, vocab_size = ", vocab_size, ")"));
    }
  }
  return ids;
}

}  // namespace

void embedding(const Tensor& token_ids, const Tensor& table, Tensor& out) {
  if (!table.defined() || table.rank() != 2 || table.dtype() != DType::f32) {
    throw InvalidArgument(concat("embedding: table must be [vocab_size, dim] f32, got ", shape_string(table.shape()),
                                 " ", dtype_name(table.dtype())));
  }
  const int32_t* ids = checked_ids(token_ids, table.dim(0), table.dim(1), out);
  kernels::cpu::embedding(ids, token_ids.dim(0), table.data<float>(), table.dim(1), out.data<float>());
}

void embedding(const Tensor& token_ids, const PackedWeight& table, Tensor& out) {
  if (!table.defined()) throw InvalidArgument("embedding: the packed table is empty (default-constructed)");
  const int64_t dim = table.in_features();
  const int32_t* ids = checked_ids(token_ids, table.out_features(), dim, out);
  float* rows = out.data<float>();
  core::parallel_rows(token_ids.dim(0), 64, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) table.unpack_row(ids[t], rows + t * dim);
  });
}

}  // namespace jagged::ops
