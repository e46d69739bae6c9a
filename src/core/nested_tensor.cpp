#include "jagged/nested_tensor.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace jagged {

std::vector<int32_t> cu_seqlens_from_lengths(std::span<const int64_t> lengths) {
  std::vector<int32_t> cu_seqlens(lengths.size() + 1, 0);
  int64_t total = 0;
  for (size_t i = 0; i < lengths.size(); ++i) {
    if (lengths[i] < 0) throw InvalidArgument(concat("sequence ", i, " has negative length ", lengths[i]));
    total += lengths[i];
    if (total > std::numeric_limits<int32_t>::max()) {
      throw InvalidArgument(concat("batch of ", total, "+ tokens exceeds the int32 offsets of cu_seqlens"));
    }
    cu_seqlens[i + 1] = static_cast<int32_t>(total);
  }
  return cu_seqlens;
}

int64_t validate_cu_seqlens(std::span<const int32_t> cu_seqlens, int64_t num_tokens) {
  if (cu_seqlens.empty()) throw InvalidArgument("cu_seqlens is empty: it needs num_seqs + 1 offsets");
  if (cu_seqlens.front() != 0) throw InvalidArgument(concat("cu_seqlens[0] is ", cu_seqlens.front(), ", not 0"));
  int64_t max_seqlen = 0;
  for (size_t i = 1; i < cu_seqlens.size(); ++i) {
    if (cu_seqlens[i] < cu_seqlens[i - 1]) {
      throw InvalidArgument(concat("cu_seqlens is not monotonic: cu_seqlens[", i, "] = ", cu_seqlens[i],
                                   " < cu_seqlens[", i - 1, "] = ", cu_seqlens[i - 1]));
    }
    max_seqlen = std::max<int64_t>(max_seqlen, cu_seqlens[i] - cu_seqlens[i - 1]);
  }
  if (cu_seqlens.back() != num_tokens) {
    throw InvalidArgument(concat("cu_seqlens ends at ", cu_seqlens.back(), " but there are ", num_tokens, " tokens"));
  }
  return max_seqlen;
}

NestedTensor::NestedTensor(Tensor values, std::vector<int32_t> cu_seqlens)
    : values_(std::move(values)), cu_seqlens_(std::move(cu_seqlens)) {
  if (!values_.defined() || values_.rank() < 1) {
    throw InvalidArgument("NestedTensor values need a token axis: shape [num_tokens, ...]");
  }
  max_seqlen_ = validate_cu_seqlens(cu_seqlens_, values_.dim(0));
}

NestedTensor NestedTensor::from_lengths(std::span<const int64_t> lengths, const Shape& inner_shape, DType dtype) {
  std::vector<int32_t> cu_seqlens = cu_seqlens_from_lengths(lengths);
  Shape shape{cu_seqlens.back()};
  shape.insert(shape.end(), inner_shape.begin(), inner_shape.end());
  return NestedTensor(Tensor(std::move(shape), dtype), std::move(cu_seqlens));
}

NestedTensor NestedTensor::from_sequences(std::span<const Tensor> sequences) {
  if (sequences.empty()) throw InvalidArgument("from_sequences: the list of sequences is empty");
  const Shape inner(sequences[0].shape().begin() + std::min(1, sequences[0].rank()), sequences[0].shape().end());
  std::vector<int64_t> lengths;
  for (size_t i = 0; i < sequences.size(); ++i) {
    const Tensor& sequence = sequences[i];
    const Shape this_inner(sequence.shape().begin() + std::min(1, sequence.rank()), sequence.shape().end());
    if (sequence.rank() < 1 || this_inner != inner || sequence.dtype() != sequences[0].dtype()) {
      throw InvalidArgument(concat("from_sequences: sequence ", i, " has shape ", shape_string(sequence.shape()), " ",
                                   dtype_name(sequence.dtype()), ", expected [len, ",
                                   shape_string(inner).substr(1), " ", dtype_name(sequences[0].dtype())));
    }
    lengths.push_back(sequence.dim(0));
  }
  NestedTensor nested = from_lengths(lengths, inner, sequences[0].dtype());
  auto* out = static_cast<std::byte*>(nested.values_.raw_data());
  for (const Tensor& sequence : sequences) {
    if (sequence.nbytes() > 0) std::memcpy(out, sequence.raw_data(), sequence.nbytes());
    out += sequence.nbytes();
  }
  return nested;
}

NestedTensor NestedTensor::from_padded(const Tensor& padded, std::span<const int64_t> lengths) {
  if (padded.rank() < 2) {
    throw InvalidArgument(concat("from_padded: expected [num_seqs, max_seqlen, ...], got ", shape_string(padded.shape())));
  }
  if (padded.dim(0) != static_cast<int64_t>(lengths.size())) {
    throw InvalidArgument(concat("from_padded: ", lengths.size(), " lengths for ", padded.dim(0), " padded rows"));
  }
  const int64_t padded_len = padded.dim(1);
  for (size_t i = 0; i < lengths.size(); ++i) {
    if (lengths[i] > padded_len) {
      throw InvalidArgument(concat("from_padded: length ", lengths[i], " of sequence ", i, " exceeds max_seqlen ", padded_len));
    }
  }
  const Shape inner(padded.shape().begin() + 2, padded.shape().end());
  NestedTensor nested = from_lengths(lengths, inner, padded.dtype());
  const size_t row_bytes = static_cast<size_t>(shape_numel(inner)) * dtype_size(padded.dtype());
  const auto* in = static_cast<const std::byte*>(padded.raw_data());
  auto* out = static_cast<std::byte*>(nested.values_.raw_data());
  for (size_t i = 0; i < lengths.size(); ++i) {
    const size_t bytes = static_cast<size_t>(lengths[i]) * row_bytes;
    if (bytes > 0) std::memcpy(out + nested.cu_seqlens_[i] * row_bytes, in + i * padded_len * row_bytes, bytes);
  }
  return nested;
}

NestedTensor NestedTensor::clone() const {
  NestedTensor copy;
  copy.values_ = values_.clone();
  copy.cu_seqlens_ = cu_seqlens_;
  copy.max_seqlen_ = max_seqlen_;
  return copy;
}

int64_t NestedTensor::seqlen(int64_t seq) const {
  if (seq < 0 || seq >= num_seqs()) {
    throw InvalidArgument(concat("sequence index ", seq, " out of range for ", num_seqs(), " sequences"));
  }
  return cu_seqlens_[seq + 1] - cu_seqlens_[seq];
}

std::vector<int64_t> NestedTensor::seqlens() const {
  std::vector<int64_t> lengths;
  for (int64_t i = 0; i < num_seqs(); ++i) lengths.push_back(cu_seqlens_[i + 1] - cu_seqlens_[i]);
  return lengths;
}

Shape NestedTensor::inner_shape() const {
  if (!values_.defined()) return {};
  return Shape(values_.shape().begin() + 1, values_.shape().end());
}

SequenceView NestedTensor::sequence(int64_t seq) const {
  const int64_t length = seqlen(seq);
  Shape shape{length};
  const Shape inner = inner_shape();
  shape.insert(shape.end(), inner.begin(), inner.end());
  const size_t row_bytes = static_cast<size_t>(shape_numel(inner)) * dtype_size(dtype());
  auto* base = static_cast<std::byte*>(const_cast<void*>(values_.raw_data()));
  return {base + cu_seqlens_[seq] * row_bytes, std::move(shape), dtype()};
}

PaddedTensor NestedTensor::to_padded(double pad_value) const {
  if (dtype() != DType::f32 && dtype() != DType::i32) {
    throw InvalidArgument(concat("to_padded supports f32 and i32 values, not ", dtype_name(dtype())));
  }
  const int64_t batch = num_seqs();
  const Shape inner = inner_shape();
  const int64_t row_elems = shape_numel(inner);
  Shape shape{batch, max_seqlen_};
  shape.insert(shape.end(), inner.begin(), inner.end());
  PaddedTensor padded{Tensor(shape, dtype()), Tensor::zeros({batch, max_seqlen_}, DType::u8), seqlens()};
  const int64_t total = padded.values.numel();
  if (dtype() == DType::f32) {
    std::fill_n(padded.values.data<float>(), total, static_cast<float>(pad_value));
  } else {
    std::fill_n(padded.values.data<int32_t>(), total, static_cast<int32_t>(pad_value));
  }
  const size_t row_bytes = static_cast<size_t>(row_elems) * dtype_size(dtype());
  const auto* in = static_cast<const std::byte*>(values_.raw_data());
  auto* out = static_cast<std::byte*>(padded.values.raw_data());
  uint8_t* mask = padded.mask.data<uint8_t>();
  for (int64_t i = 0; i < batch; ++i) {
    const int64_t length = cu_seqlens_[i + 1] - cu_seqlens_[i];
    if (length > 0) std::memcpy(out + i * max_seqlen_ * row_bytes, in + cu_seqlens_[i] * row_bytes, length * row_bytes);
    std::fill_n(mask + i * max_seqlen_, length, uint8_t{1});
  }
  return padded;
}

}  // namespace jagged
