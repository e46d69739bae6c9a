#include "models/weight_helpers.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "core/quant_blocks.h"

namespace jagged::models {

const Tensor& require_weight(const WeightMap& weights, const std::string& name, const Shape& shape, const char* family) {
  const auto found = weights.find(name);
  if (found == weights.end()) throw InvalidArgument(concat(family, " weights: missing tensor ", name));
  check_shape(found->second, shape, name.c_str());
  return found->second;
}

const Tensor& require_matrix(const WeightMap& weights, const std::string& name, const Shape& shape, const char* family) {
  const auto found = weights.find(name);
  if (found == weights.end()) throw InvalidArgument(concat(family, " weights: missing tensor ", name));
  const DType dtype = found->second.dtype();
  const bool stored = is_block_dtype(dtype) || is_half_dtype(dtype);  // packed as the file has it
  check_shape(found->second, shape, name.c_str(), stored ? dtype : DType::f32);
  return found->second;
}

Tensor concat_rows(std::initializer_list<const Tensor*> parts) {
  Shape shape = (*parts.begin())->shape();
  const DType first = (*parts.begin())->dtype();
  bool same = true;
  shape[0] = 0;
  for (const Tensor* part : parts) {
    shape[0] += part->dim(0);
    same = same && part->dtype() == first;
  }
  Tensor stacked(shape, same ? first : DType::f32);
  auto* out = static_cast<std::byte*>(stacked.raw_data());
  for (const Tensor* part : parts) {
    if (same || part->dtype() == DType::f32) {
      std::memcpy(out, part->raw_data(), part->nbytes());
    } else if (is_half_dtype(part->dtype())) {
      const Tensor widened = part->to_f32();
      std::memcpy(out, widened.raw_data(), widened.nbytes());
    } else {
      dequantize_row(*quant_type_of(part->dtype()), static_cast<const uint8_t*>(part->raw_data()), part->numel(),
                     reinterpret_cast<float*>(out));
    }
    out += dtype_nbytes(stacked.dtype(), part->numel());
    part->release_file_pages();  // the fused copy replaces it (weights resident once)
  }
  return stacked;
}

ops::PackedWeight pack_fused(std::initializer_list<const Tensor*> parts, ops::WeightType type) {
  const DType first = (*parts.begin())->dtype();
  if (std::all_of(parts.begin(), parts.end(), [&](const Tensor* part) { return part->dtype() == first; })) {
    return ops::PackedWeight(concat_rows(parts), type);
  }
  std::vector<ops::PackedWeight> packed;
  for (const Tensor* part : parts) packed.emplace_back(*part, type);
  return ops::PackedWeight::stack(std::move(packed));
}

void own_file_backed(WeightMap& weights) {
  for (auto& [name, tensor] : weights) {
    if (!tensor.file_backed()) continue;
    Tensor copy = is_half_dtype(tensor.dtype()) ? tensor.to_f32() : tensor.clone();
    tensor.release_file_pages();
    tensor = std::move(copy);
  }
}

Tensor slice_rows(const Tensor& tensor, int64_t begin, int64_t end) {
  Shape shape = tensor.shape();
  shape[0] = end - begin;
  Tensor slice(shape);
  const size_t row_bytes = tensor.nbytes() / static_cast<size_t>(tensor.dim(0));
  std::memcpy(slice.raw_data(), static_cast<const std::byte*>(tensor.raw_data()) + begin * row_bytes, slice.nbytes());
  return slice;
}

void validate_token_batch(const NestedTensor& token_ids, int64_t vocab_size, int64_t context_length,
                          const char* family) {
  if (token_ids.num_seqs() == 0) throw InvalidArgument(concat(family, " forward: the batch has no sequences"));
  if (token_ids.dtype() != DType::i32 || token_ids.inner_shape() != Shape{}) {
    throw InvalidArgument(concat(family, " forward: token ids must be a nested [num_tokens] i32 tensor, got inner shape ",
                                 shape_string(token_ids.inner_shape()), " ", dtype_name(token_ids.dtype())));
  }
  for (int64_t seq = 0; seq < token_ids.num_seqs(); ++seq) {
    if (token_ids.seqlen(seq) > context_length) {
      throw InvalidArgument(concat("sequence ", seq, " has ", token_ids.seqlen(seq),
                                   " tokens, more than the model's context length ", context_length));
    }
  }
  const int32_t* ids = token_ids.values().data<int32_t>();
  for (int64_t t = 0; t < token_ids.num_tokens(); ++t) {
    if (ids[t] < 0 || ids[t] >= vocab_size) {
      throw InvalidArgument(concat("token id ", ids[t], " at packed position ", t, " is outside the vocabulary [0, ",
                                   vocab_size, ")"));
    }
  }
}

std::string layer_name(int layer, const char* suffix) { return concat("blk.", layer, ".", suffix); }

}  // namespace jagged::models
