// Small helpers every model family uses to take its weights from a WeightMap and fuse them.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>

#include "jagged/model_config.h"

namespace jagged::models {

// The tensor `name` of `shape` (f32); InvalidArgument naming the family and the tensor when missing or misshapen.
const Tensor& require_weight(const WeightMap& weights, const std::string& name, const Shape& shape, const char* family);

// Stacks [rows_i, cols] or [n_i] tensors along their first axis: fused projections run as one GEMM.
Tensor concat_rows(std::initializer_list<const Tensor*> parts);

// Rows [begin, end) of a [rows, ...] tensor, copied.
Tensor slice_rows(const Tensor& tensor, int64_t begin, int64_t end);

// Canonical per-layer name: "blk.<layer>.<suffix>".
std::string layer_name(int layer, const char* suffix);

}  // namespace jagged::models
