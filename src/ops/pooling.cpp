#include "jagged/pooling.h"

#include "jagged/nested_tensor.h"
#include "kernels/pooling.h"

namespace jagged {

std::string_view pooling_name(Pooling pooling) {
  switch (pooling) {
    case Pooling::cls: return "cls";
    case Pooling::mean: return "mean";
    case Pooling::max: return "max";
  }
  return "unknown";
}

Pooling parse_pooling(std::string_view name) {
  for (const Pooling pooling : {Pooling::cls, Pooling::mean, Pooling::max}) {
    if (name == pooling_name(pooling)) return pooling;
  }
  throw InvalidArgument(concat("unknown pooling '", name, "'; choose cls, mean or max"));
}

namespace ops {
namespace {

void check_pooling(Pooling pooling) {
  if (pooling != Pooling::cls && pooling != Pooling::mean && pooling != Pooling::max) {
    throw InvalidArgument(concat("pool: unknown pooling kind ", static_cast<int>(pooling)));
  }
}

void check_rows(const Tensor& x, const char* what) {
  if (x.rank() != 2 || x.dtype() != DType::f32) {
    throw InvalidArgument(concat(what, ": x must be an f32 [rows, dim] tensor, got ", shape_string(x.shape()), " ",
                                 dtype_name(x.dtype())));
  }
}

}  // namespace

void pool(const Tensor& x, std::span<const int32_t> cu_seqlens, Pooling pooling, Tensor& out) {
  check_rows(x, "pool");
  check_pooling(pooling);
  validate_cu_seqlens(cu_seqlens, x.dim(0));
  const int64_t num_seqs = static_cast<int64_t>(cu_seqlens.size()) - 1;
  check_shape(out, {num_seqs, x.dim(1)}, "pool out");
  kernels::cpu::pool(x.data<float>(), x.dim(1), cu_seqlens.data(), num_seqs, pooling, out.data<float>());
}

void pool_padded(const Tensor& x, const Tensor& mask, Pooling pooling, Tensor& out) {
  check_rows(x, "pool_padded");
  check_pooling(pooling);
  if (mask.rank() != 2 || mask.dtype() != DType::u8) {
    throw InvalidArgument(concat("pool_padded: mask must be a u8 [num_seqs, max_seqlen] tensor, got ",
                                 shape_string(mask.shape()), " ", dtype_name(mask.dtype())));
  }
  const int64_t num_seqs = mask.dim(0);
  const int64_t max_seqlen = mask.dim(1);
  if (x.dim(0) != num_seqs * max_seqlen) {
    throw InvalidArgument(concat("pool_padded: x has ", x.dim(0), " rows but the mask ", shape_string(mask.shape()),
                                 " describes ", num_seqs * max_seqlen, " positions"));
  }
  check_shape(out, {num_seqs, x.dim(1)}, "pool_padded out");
  kernels::cpu::pool_padded(x.data<float>(), x.dim(1), mask.data<uint8_t>(), num_seqs, max_seqlen, pooling,
                            out.data<float>());
}

void l2_normalize(Tensor& x) {
  check_rows(x, "l2_normalize");
  kernels::cpu::l2_normalize(x.data<float>(), x.dim(0), x.dim(1));
}

}  // namespace ops
}  // namespace jagged
