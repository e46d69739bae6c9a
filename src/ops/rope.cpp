#include "kernels/rope.h"

#include <cmath>
#include <limits>
#include <numbers>

#include "jagged/ops.h"

namespace jagged::ops {

std::vector<float> rope_inv_freq(int head_dim, float theta, const RopeScaling& scaling) {
  if (head_dim <= 0 || head_dim % 2 != 0) {
    throw InvalidArgument(concat("rope_inv_freq: head_dim must be positive and even, got ", head_dim));
  }
  if (!(theta > 0.0f) || !std::isfinite(theta)) {
    throw InvalidArgument(concat("rope_inv_freq: theta must be positive, got ", theta));
  }
  const bool scaled = scaling.factor > 0.0f;
  if (scaled && !(scaling.low_freq_factor > 0.0f && scaling.high_freq_factor > scaling.low_freq_factor &&
                  scaling.original_context > 0)) {
    throw InvalidArgument(concat("rope_inv_freq: Llama 3 scaling needs 0 < low_freq_factor < high_freq_factor and ",
                                 "original_context > 0, got low_freq_factor ", scaling.low_freq_factor,
                                 ", high_freq_factor ", scaling.high_freq_factor, ", original_context ",
                                 scaling.original_context));
  }
  if (scaling.factor < 0.0f || std::isnan(scaling.factor)) {
    throw InvalidArgument(concat("rope_inv_freq: scaling factor must be >= 0 (0: none), got ", scaling.factor));
  }
  std::vector<float> inv_freq(static_cast<size_t>(head_dim / 2));
  for (int i = 0; i < head_dim / 2; ++i) {
    const double base = std::pow(static_cast<double>(theta), -2.0 * i / head_dim);
    if (!scaled) {
      inv_freq[i] = static_cast<float>(base);
      continue;
    }
    // Hugging Face's _compute_llama3_parameters: wavelengths shorter than original_context / high_freq_factor
    // keep their frequency, those longer than original_context / low_freq_factor are divided by factor, and
    // the ones between are interpolated smoothly.
    const double context = static_cast<double>(scaling.original_context);
    const double low_freq_wavelen = context / scaling.low_freq_factor;
    const double high_freq_wavelen = context / scaling.high_freq_factor;
    const double wavelen = 2.0 * std::numbers::pi / base;
    double scaled_freq = base;
    if (wavelen > low_freq_wavelen) {
      scaled_freq = base / scaling.factor;
    } else if (wavelen >= high_freq_wavelen) {
      const double smooth =
          (context / wavelen - scaling.low_freq_factor) / (scaling.high_freq_factor - scaling.low_freq_factor);
      scaled_freq = (1.0 - smooth) * base / scaling.factor + smooth * base;
    }
    inv_freq[i] = static_cast<float>(scaled_freq);
  }
  return inv_freq;
}

Tensor token_positions(std::span<const int32_t> cu_seqlens, std::span<const int32_t> start_positions) {
  if (cu_seqlens.empty()) throw InvalidArgument("token_positions: cu_seqlens is empty: it needs num_seqs + 1 offsets");
  validate_cu_seqlens(cu_seqlens, cu_seqlens.back());
  const int64_t num_seqs = static_cast<int64_t>(cu_seqlens.size()) - 1;
  if (!start_positions.empty() && static_cast<int64_t>(start_positions.size()) != num_seqs) {
    throw InvalidArgument(
        concat("token_positions: ", start_positions.size(), " start_positions for ", num_seqs, " sequences"));
  }
  Tensor positions({cu_seqlens.back()}, DType::i32);
  int32_t* out = positions.data<int32_t>();
  for (int64_t seq = 0; seq < num_seqs; ++seq) {
    const int64_t start = start_positions.empty() ? 0 : start_positions[seq];
    const int64_t length = cu_seqlens[seq + 1] - cu_seqlens[seq];
    if (start < 0) {
      throw InvalidArgument(concat("token_positions: start_positions[", seq, "] = ", start, " is negative"));
    }
    if (start + length > std::numeric_limits<int32_t>::max()) {
      throw InvalidArgument(
          concat("token_positions: sequence ", seq, " reaches position ", start + length, ", beyond int32"));
    }
    for (int64_t i = 0; i < length; ++i) out[cu_seqlens[seq] + i] = static_cast<int32_t>(start + i);
  }
  return positions;
}

namespace {

void check_head_dim(int head_dim) {
  if (head_dim <= 0 || head_dim % 2 != 0) {
    throw InvalidArgument(concat("rope: head_dim must be positive and even, got ", head_dim));
  }
}

void check_pairs(RopePairs pairs) {
  if (pairs != RopePairs::adjacent && pairs != RopePairs::halves) {
    throw InvalidArgument(concat("rope: unknown pair convention ", static_cast<int>(pairs)));
  }
}

void check_heads(MatrixView x, int num_heads, int head_dim) {
  if (num_heads <= 0) throw InvalidArgument(concat("rope: num_heads must be positive, got ", num_heads));
  check_head_dim(head_dim);
  if (x.cols != static_cast<int64_t>(num_heads) * head_dim) {
    throw InvalidArgument(
        concat("rope: x has ", x.cols, " columns, expected num_heads * head_dim = ", num_heads, " * ", head_dim));
  }
  if (x.rows < 0 || (x.rows > 1 && x.row_stride < x.cols) || (x.rows > 0 && x.data == nullptr)) {
    throw InvalidArgument(
        concat("rope: x view [", x.rows, ", ", x.cols, "] with row_stride ", x.row_stride, " is not a valid matrix"));
  }
}

// rotations: [>= rows, 2 * head_dim] f32.
void check_rotations(const Tensor& rotations, int64_t rows, int head_dim) {
  if (!rotations.defined() || rotations.rank() != 2 || rotations.dtype() != DType::f32 || rotations.dim(0) < rows ||
      rotations.dim(1) != 2 * int64_t{head_dim}) {
    throw InvalidArgument(concat("rope rotations: expected [>= ", rows, ", ", 2 * int64_t{head_dim}, "] f32, got ",
                                 shape_string(rotations.shape())));
  }
}

}  // namespace

void rope_rotations(const Tensor& positions, std::span<const float> inv_freq, int head_dim, RopePairs pairs,
                    Tensor& rotations) {
  check_head_dim(head_dim);
  check_pairs(pairs);
  if (!positions.defined() || positions.rank() != 1 || positions.dtype() != DType::i32) {
    throw InvalidArgument(concat("rope positions: expected [num_tokens] i32, got ", shape_string(positions.shape())));
  }
  const int64_t rows = positions.dim(0);
  check_rotations(rotations, rows, head_dim);
  if (static_cast<int64_t>(inv_freq.size()) != head_dim / 2) {
    throw InvalidArgument(
        concat("rope: inv_freq has ", inv_freq.size(), " entries, expected head_dim / 2 = ", head_dim / 2));
  }
  const int32_t* position = positions.data<int32_t>();
  for (int64_t t = 0; t < rows; ++t) {
    if (position[t] < 0) throw InvalidArgument(concat("rope: position ", position[t], " of token ", t, " is negative"));
  }
  kernels::cpu::rope_rotations(position, rows, inv_freq.data(), head_dim, pairs, rotations.data<float>());
}

void rope_apply(MatrixView x, int num_heads, int head_dim, const Tensor& rotations, RopePairs pairs) {
  check_heads(x, num_heads, head_dim);
  check_pairs(pairs);
  check_rotations(rotations, x.rows, head_dim);
  kernels::cpu::rope_apply(x, num_heads, head_dim, rotations.data<float>(), pairs);
}

void rope(MatrixView x, int num_heads, int head_dim, const Tensor& positions, std::span<const float> inv_freq,
          RopePairs pairs) {
  check_heads(x, num_heads, head_dim);
  check_shape(positions, {x.rows}, "rope positions", DType::i32);
  Tensor rotations({x.rows, 2 * int64_t{head_dim}});
  rope_rotations(positions, inv_freq, head_dim, pairs, rotations);
  rope_apply(x, num_heads, head_dim, rotations, pairs);
}

}  // namespace jagged::ops
