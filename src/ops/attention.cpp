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

namespace {

// The batch's offsets, tables and block ids are consistent with rows new tokens and the cache's blocks.
void check_paged_batch(const char* op, const PagedKvBatch& batch, int64_t rows) {
  validate_cu_seqlens(batch.cu_seqlens, rows);
  const size_t num_seqs = batch.cu_seqlens.size() - 1;
  if (batch.context_lengths.size() != num_seqs || batch.block_table_offsets.size() != num_seqs + 1) {
    throw InvalidArgument(concat(op, ": ", num_seqs, " sequences but ", batch.context_lengths.size(),
                                 " context lengths and ", batch.block_table_offsets.size(), " block table offsets"));
  }
  const int64_t block_tokens = kernels::cpu::kv_block_tokens();
  for (size_t seq = 0; seq < num_seqs; ++seq) {
    const int64_t begin = batch.block_table_offsets[seq];
    const int64_t end = batch.block_table_offsets[seq + 1];
    const int64_t keys = int64_t{batch.context_lengths[seq]} + batch.cu_seqlens[seq + 1] - batch.cu_seqlens[seq];
    if (batch.context_lengths[seq] < 0 || begin < 0 || end < begin ||
        end > static_cast<int64_t>(batch.block_tables.size()) || (end - begin) * block_tokens < keys) {
      throw InvalidArgument(concat(op, ": sequence ", seq, " has ", keys, " keys but a block table of ",
                                   end - begin, " blocks of ", block_tokens, " (offsets ", begin, "..", end, ")"));
    }
    for (int64_t i = begin; i < end; ++i) {
      if (batch.block_tables[i] < 0 || batch.block_tables[i] >= batch.num_blocks) {
        throw InvalidArgument(concat(op, ": sequence ", seq, " names block ", batch.block_tables[i], ", the cache has ",
                                     batch.num_blocks));
      }
    }
  }
}

void check_paged_layer(const char* op, const PagedKvLayer& layer, const kernels::AttentionParams& params) {
  if (layer.keys == nullptr || layer.values == nullptr) throw InvalidArgument(concat(op, ": no cache layer"));
  check_kv_dtype(layer.dtype, op);
  // Groups must not overlap: each holds num_kv_heads runs of blocks_per_group head blocks.
  if (layer.blocks_per_group < 0 ||
      (layer.blocks_per_group > 0 && layer.group_stride < params.num_kv_heads * layer.blocks_per_group)) {
    throw InvalidArgument(concat(op, ": cache groups of ", layer.blocks_per_group, " blocks ", layer.group_stride,
                                 " head blocks apart overlap (", params.num_kv_heads, " kv heads)"));
  }
}

}  // namespace

int64_t kv_block_tokens() { return kernels::cpu::kv_block_tokens(); }

int64_t kv_value_stride(int64_t head_dim) { return kernels::cpu::kv_value_stride(head_dim); }

void paged_kv_write(ConstMatrixView k, ConstMatrixView v, const PagedKvBatch& batch, const PagedKvLayer& layer,
                    const AttentionConfig& config) {
  const kernels::AttentionParams params = checked_params("paged_kv_write", config);
  check_view("paged_kv_write", "k", k, k.rows, params.num_kv_heads, params.head_dim, "num_kv_heads");
  check_view("paged_kv_write", "v", v, k.rows, params.num_kv_heads, params.head_dim, "num_kv_heads");
  check_paged_batch("paged_kv_write", batch, k.rows);
  check_paged_layer("paged_kv_write", layer, params);
  kernels::cpu::paged_kv_write(k, v, batch, layer, params);
}

void paged_attention(ConstMatrixView q, MatrixView out, const PagedKvBatch& batch, const PagedKvLayer& layer,
                     const AttentionConfig& config, std::span<std::byte> workspace) {
  const kernels::AttentionParams params = checked_params("paged_attention", config);
  check_view("paged_attention", "q", q, q.rows, params.num_heads, params.head_dim, "num_heads");
  check_view("paged_attention", "out", out, q.rows, params.num_heads, params.head_dim, "num_heads");
  check_paged_batch("paged_attention", batch, q.rows);
  check_paged_layer("paged_attention", layer, params);
  if (reinterpret_cast<uintptr_t>(workspace.data()) % 64 != 0) {
    throw InvalidArgument("paged_attention: the workspace must be 64-byte aligned");
  }
  kernels::cpu::paged_attention(q, out, batch, layer, params, workspace);
}

int64_t paged_attention_workspace_bytes(const AttentionConfig& config, int threads) {
  return kernels::cpu::paged_attention_workspace_bytes(checked_params("paged_attention", config), threads);
}

}  // namespace jagged::ops

namespace jagged {

void check_kv_dtype(DType dtype, std::string_view who) {
  if (dtype != DType::f32 && dtype != DType::bf16) {
    throw InvalidArgument(concat(who, ": a KV cache of ", dtype_name(dtype), " (f32 or bf16 only)"));
  }
}

DType parse_kv_dtype(std::string_view name) {
  if (name == "f32") return DType::f32;
  if (name == "bf16") return DType::bf16;
  throw InvalidArgument(concat("kv_dtype must be f32 or bf16, got '", name, "'"));
}

}  // namespace jagged
