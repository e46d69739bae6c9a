// Element types. Compute is f32; f16/bf16 are storage types converted at load (bf16/f16 compute planned).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace jagged {

enum class DType : uint8_t { f32, f16, bf16, i32, u8 };

size_t dtype_size(DType dtype);
std::string_view dtype_name(DType dtype);

float f16_to_f32(uint16_t bits);
float bf16_to_f32(uint16_t bits);
uint16_t f32_to_bf16(float value);  // round to nearest even
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
