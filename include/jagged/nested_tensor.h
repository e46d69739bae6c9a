// NestedTensor: a ragged batch in its native form. All sequences' tokens packed one after another in one
// tensor `values` [num_tokens, inner...], plus `cu_seqlens` [num_seqs + 1] int32 offsets (FlashAttention's
// varlen contract): sequence i is rows [cu_seqlens[i], cu_seqlens[i+1]). Sequences of length 0 are allowed.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "jagged/tensor.h"

namespace jagged {

// The padded form that frameworks use: [num_seqs, max_seqlen, inner...] plus a mask of the real tokens.
struct PaddedTensor {
  Tensor values;                 // [num_seqs, max_seqlen, inner...]
  Tensor mask;                   // [num_seqs, max_seqlen] u8: 1 for a real token, 0 for padding
  std::vector<int64_t> lengths;  // [num_seqs]
};

// A cheap view of one sequence: [length, inner...] starting at `data`.
struct SequenceView {
  void* data = nullptr;
  Shape shape;
  DType dtype = DType::f32;
  template <typename T>
  T* as() const { return static_cast<T*>(data); }
};

class NestedTensor {
 public:
  NestedTensor() = default;
  // Validates: cu_seqlens[0] == 0, non-decreasing, last == values.dim(0).
  NestedTensor(Tensor values, std::vector<int32_t> cu_seqlens);
  // Packs copies of the sequences; each is [len_i, inner...] with the same inner shape and dtype.
  static NestedTensor from_sequences(std::span<const Tensor> sequences);
  // Uninitialised values for these lengths.
  static NestedTensor from_lengths(std::span<const int64_t> lengths, const Shape& inner_shape,
                                   DType dtype = DType::f32);
  // Keeps the first lengths[i] rows of padded[i] (the study's truncate_to_nested).
  static NestedTensor from_padded(const Tensor& padded, std::span<const int64_t> lengths);

  NestedTensor(NestedTensor&&) noexcept = default;
  NestedTensor& operator=(NestedTensor&&) noexcept = default;
  NestedTensor clone() const;

  int64_t num_seqs() const { return static_cast<int64_t>(cu_seqlens_.size()) - 1; }
  int64_t num_tokens() const { return cu_seqlens_.empty() ? 0 : cu_seqlens_.back(); }
  int64_t seqlen(int64_t seq) const;
  int64_t max_seqlen() const { return max_seqlen_; }
  std::vector<int64_t> seqlens() const;
  Shape inner_shape() const;  // values' shape without its first axis
  DType dtype() const { return values_.dtype(); }
  std::span<const int32_t> cu_seqlens() const { return cu_seqlens_; }

  Tensor& values() { return values_; }
  const Tensor& values() const { return values_; }
  SequenceView sequence(int64_t seq) const;  // no copy

  // [num_seqs, max_seqlen, inner...] with pad_value in the padding (f32 and i32 values).
  PaddedTensor to_padded(double pad_value = 0.0) const;

 private:
  Tensor values_;
  std::vector<int32_t> cu_seqlens_{0};
  int64_t max_seqlen_ = 0;
};

// Offsets from lengths: [0, l0, l0+l1, ...]. Throws on a negative length or an int32 overflow.
std::vector<int32_t> cu_seqlens_from_lengths(std::span<const int64_t> lengths);
// Validates offsets for num_tokens rows; returns the longest sequence.
int64_t validate_cu_seqlens(std::span<const int32_t> cu_seqlens, int64_t num_tokens);

}  // namespace jagged
