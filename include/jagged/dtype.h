// Element types. Compute is f32; f16/bf16 are storage types converted at load (bf16/f16 compute planned).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace jagged {

enum class DType : uint8_t {
  f32, f16, bf16, i32, u8,
  // ggml's block types (src/core/quant_blocks.h), as a GGUF file stores weights: the shape is the logical
  // [rows, cols] (cols a multiple of the block's values) and the bytes are each row's blocks in order.
  q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k, q6_k,
};

bool is_block_dtype(DType dtype);
inline bool is_half_dtype(DType dtype) { return dtype == DType::f16 || dtype == DType::bf16; }
// Bytes per element; 0 for a block type (see dtype_nbytes).
size_t dtype_size(DType dtype);
// Bytes of `numel` elements (a block type: numel / values blocks, numel a multiple of the block's values).
size_t dtype_nbytes(DType dtype, int64_t numel);
std::string_view dtype_name(DType dtype);

float f16_to_f32(uint16_t bits);
// Inline: the KV cache rounds every key and value it stores.
inline float bf16_to_f32(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }
inline uint16_t f32_to_bf16(float value) {  // round to nearest even; a NaN stays a (quiet) NaN
  uint32_t bits = std::bit_cast<uint32_t>(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fff + ((bits >> 16) & 1);
  return static_cast<uint16_t>(bits >> 16);
}
uint16_t f32_to_f16(float value);   // round to nearest even

template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() { return DType::f32; }
template <>
constexpr DType dtype_of<int32_t>() { return DType::i32; }
template <>
constexpr DType dtype_of<uint8_t>() { return DType::u8; }
template <>
constexpr DType dtype_of<uint16_t>() { return DType::f16; }  // raw 16-bit storage (f16 or bf16)

}  // namespace jagged
