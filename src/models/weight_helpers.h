// Small helpers every model family uses to take its weights from a WeightMap and fuse them.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>

#include "jagged/model_config.h"
#include "jagged/nested_tensor.h"
#include "jagged/ops.h"

namespace jagged::models {

// The tensor `name` of `shape` (f32); InvalidArgument naming the family and the tensor when missing or misshapen.
const Tensor& require_weight(const WeightMap& weights, const std::string& name, const Shape& shape, const char* family);

// A linear layer's weight `name` of `shape`: f32, or a block dtype (a GGUF file's Q4_K..., kept quantized for
// ops::PackedWeight). InvalidArgument as require_weight otherwise.
const Tensor& require_matrix(const WeightMap& weights, const std::string& name, const Shape& shape, const char* family);

// Stacks [rows_i, cols] or [n_i] tensors along their first axis: fused projections run as one GEMM.
// Parts borrowed from a file mapping have their pages released from memory (Tensor::release_file_pages).
// Parts of one block dtype stack as blocks (rows are whole blocks); parts of different dtypes (llama-quantize
// gives attn_v more bits than attn_q in some layers) are widened to f32, exactly, and stack as f32.
Tensor concat_rows(std::initializer_list<const Tensor*> parts);

// Every tensor still borrowed from a file mapping replaced by its own copy, the mapping's pages released: after
// loading, nothing reads the file again (pointers to the map's tensors stay valid).
void own_file_backed(WeightMap& weights);

// A fused projection (QKV, gate and up) packed for ops::linear: the parts' rows stacked into one packed weight when
// they share a dtype; else each part packed in its own type (ops::PackedWeight::stack), never widened.
ops::PackedWeight pack_fused(std::initializer_list<const Tensor*> parts, ops::WeightType type);

// Rows [begin, end) of a [rows, ...] tensor, copied.
Tensor slice_rows(const Tensor& tensor, int64_t begin, int64_t end);

// Checks a batch of token ids before a forward: at least one sequence, nested [num_tokens] i32, every sequence
// within context_length, every id in [0, vocab_size). InvalidArgument naming the family and the offender.
void validate_token_batch(const NestedTensor& token_ids, int64_t vocab_size, int64_t context_length,
                          const char* family);

// Canonical per-layer name: "blk.<layer>.<suffix>".
std::string layer_name(int layer, const char* suffix);

}  // namespace jagged::models
