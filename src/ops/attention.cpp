#include "kernels/attention.h"

#include <cmath>

#include "jagged/ops.h"

namespace jagged::ops {
namespace {

kernels::AttentionParams checked_params(const char* op, const AttentionConfig& config) {
  if (config.num_heads <= 0 || config.num_kv_heads <= 0) {
    throw InvalidArgument(concat(op, ": num_heads (", config.num_heads, ") and num_kv_heads (", config.num_kv_heads,
                                 ") must be positive"));
  }
  if (config.num_heads % config.num_kv_heads != 0) {
    throw InvalidArgument(concat(op, ": num_kv_heads (", config.num_kv_heads, ") must divide num_heads (",
                                 config.num_heads, ")"));
  }
  if (config.head_dim <= 0 || config.head_dim % 8 != 0) {
    throw InvalidArgument(concat(op, ": head_dim must be a positive multiple of 8, got ", config.head_dim));
  }
  if (!(config.scale >= 0.0f) || !std::isfinite(config.scale)) {
    throw InvalidArgument(concat(op, ": scale must be finite and >= 0 (0 means 1/sqrt(head_dim)), got ", config.scale));
  }
  const float scale = config.scale > 0.0f ? config.scale : 1.0f / std::sqrt(static_cast<float>(config.head_dim));
  return {config.num_heads, config.num_kv_heads, config.head_dim, scale, config.causal};
}

// A view with no rows is accepted whatever its width: Tensor::matrix() of a [0, n] tensor has 0 columns.
template <typename T>
void check_view(const char* op, const char* name, MatrixRef<T> view, int64_t rows, int64_t heads, int64_t head_dim,
                const char* heads_name) {
  if (view.rows != rows) {
    throw InvalidArgument(concat(op, ": ", name, " has ", view.rows, " rows, expected ", rows));
  }
  if (rows == 0) return;
  if (view.cols != heads * head_dim) {
    throw InvalidArgument(concat(op, ": ", name, " has ", view.cols, " columns, expected ", heads_name, " * head_dim = ",
                                 heads, " * ", head_dim, " = ", heads * head_dim));
  }
  if (view.row_stride < view.cols) {
    throw InvalidArgument(concat(op, ": ", name, " row_stride ", view.row_stride, " < its ", view.cols, " columns"));
  }
  if (view.data == nullptr) throw InvalidArgument(concat(op, ": ", name, " has no data"));
}

void check_views(const char* op, ConstMatrixView q, ConstMatrixView k, ConstMatrixView v, MatrixView out,
                 int64_t rows, const kernels::AttentionParams& params) {
  check_view(op, "q", q, rows, params.num_heads, params.head_dim, "num_heads");
  check_view(op, "k", k, rows, params.num_kv_heads, params.head_dim, "num_kv_heads");
  check_view(op, "v", v, rows, params.num_kv_heads, params.head_dim, "num_kv_heads");
  check_view(op, "out", out, rows, params.num_heads, params.head_dim, "num_heads");
}

}  // namespace

void attention(ConstMatrixView q, ConstMatrixView k, ConstMatrixView v, MatrixView out,
               std::span<const int32_t> cu_seqlens, const AttentionConfig& config) {
  const kernels::AttentionParams params = checked_params("attention", config);
  check_views("attention", q, k, v, out, q.rows, params);
  validate_cu_seqlens(cu_seqlens, q.rows);
  kernels::cpu::attention(q, k, v, out, cu_seqlens, params);
}

void attention_padded(ConstMatrixView q, ConstMatrixView k, ConstMatrixView v, MatrixView out, int64_t batch,
                      int64_t max_seqlen, const Tensor& key_padding_mask, const AttentionConfig& config) {
  const kernels::AttentionParams params = checked_params("attention_padded", config);
  if (batch < 0 || max_seqlen < 0) {
    throw InvalidArgument(concat("attention_padded: batch (", batch, ") and max_seqlen (", max_seqlen,
                                 ") must be >= 0"));
  }
  check_views("attention_padded", q, k, v, out, batch * max_seqlen, params);
  check_shape(key_padding_mask, {batch, max_seqlen}, "attention_padded key_padding_mask", DType::u8);
  kernels::cpu::attention_padded(q, k, v, out, batch, max_seqlen, key_padding_mask.data<uint8_t>(), params);
}

}  // namespace jagged::ops
