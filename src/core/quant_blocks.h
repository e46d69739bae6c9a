// ggml's quantized block formats (the GGUF tensor types llama.cpp writes), as data: each row of a weight is a
// run of fixed-size blocks, each coding `values` consecutive weights in `bytes` bytes. One piece of code reads
// them for the loader (widening, when asked) and for the linear kernels (dequantizing a panel slice at a time).
// Dequantization is bit-exact with gguf-py's numpy dequantizers (gguf/quants.py): the same f32 operations in the
// same order, no fused multiply-add (tests/core/quant_blocks_test.cpp runs gguf-py on the same bytes).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "jagged/dtype.h"

namespace jagged {

enum class QuantType : uint8_t { q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k, q6_k };
inline constexpr QuantType kQuantTypes[] = {QuantType::q4_0, QuantType::q4_1, QuantType::q5_0, QuantType::q5_1,
                                            QuantType::q8_0, QuantType::q4_k, QuantType::q5_k, QuantType::q6_k};

struct QuantLayout {
  std::string_view name;  // ggml's: "Q4_0", "Q4_K"...
  uint32_t ggml_type;     // the GGUF tensor type id
  int64_t values;         // weights per block: 32, or 256 for the K types (super-blocks)
  int64_t bytes;          // bytes per block
};
const QuantLayout& quant_layout(QuantType type);
// The QuantType of a GGUF tensor type id, or nullopt for a type without one here (f32, f16, Q2_K...).
std::optional<QuantType> quant_type_of_ggml(uint32_t ggml_type);

// The block type of a tensor's dtype (nullopt for f32, f16...), and back.
std::optional<QuantType> quant_type_of(DType dtype);
DType dtype_of(QuantType type);

// Bytes of a row of `values` weights (a multiple of the block's values).
int64_t quant_row_bytes(QuantType type, int64_t values);

// One block -> quant_layout(type).values floats. Layouts (d, m, dmin: f16; w: the weight):
//   Q4_0  d, 16 bytes of nibbles (value i < 16: low nibble of byte i; 16 + i: its high nibble); w = d (q - 8)
//   Q4_1  d, m, nibbles as Q4_0; w = d q + m
//   Q5_0  d, qh (u32: bit i is value i's fifth bit), nibbles as Q4_0; w = d (q - 16)
//   Q5_1  d, m, qh, nibbles; w = d q + m
//   Q8_0  d, 32 int8; w = q d
//   Q4_K  d, dmin, 12 bytes of 6-bit (scale, min) pairs for 8 sub-blocks of 32, 128 bytes of nibbles (bytes
//         32 g .. 32 g + 31: sub-block 2 g in the low nibbles, 2 g + 1 in the high); w = (d sc) q - (dmin m)
//   Q5_K  as Q4_K plus qh (32 bytes: bit s of byte i is the fifth bit of value i of sub-block s)
//   Q6_K  ql (128 bytes of low nibbles), qh (64 bytes of 2-bit pairs), 16 int8 scales (one per 16 values), d;
//         w = (d scale) (q - 32)
void dequantize_block(QuantType type, const uint8_t* block, float* values);
// A block as groups of integer quants with one f32 step and offset per group: w = step * q - offset, the same
// f32 value as dequantize_block gives (step * q is exact in f32 for every type here: at most 24 significant bits;
// the subtraction rounds once, as gguf-py's does). Groups of quant_group_values(type) values: 16 for Q6_K, else
// 32. q is centred for the symmetric types (Q4_0: q - 8, Q5_0: q - 16, Q6_K: q - 32; offset 0), raw otherwise
// (Q4_1 and Q5_1: offset = -m; Q4_K and Q5_K: step = d sc, offset = dmin m).
int64_t quant_group_values(QuantType type);
void decode_block_groups(QuantType type, const uint8_t* block, float* steps, float* offsets, int8_t* quants);

// A K block's steps and offsets as their factors (decode_block_groups' step g = d * sub_scales[g], offset
// g = dmin * sub_mins[g], each product exact in f32): d and dmin as the file's f16 bits, the 6-bit (Q4_K, Q5_K:
// 8 of them) or int8 (Q6_K: 16, no mins) sub-block factors. InvalidArgument for a type without super-blocks.
struct KBlockScales {
  uint16_t d = 0;
  uint16_t dmin = 0;
  int8_t sub_scales[16] = {};
  int8_t sub_mins[8] = {};
};
KBlockScales k_block_scales(QuantType type, const uint8_t* block);

// A row of `count` weights (a multiple of the block's values) -> floats.
void dequantize_row(QuantType type, const uint8_t* blocks, int64_t count, float* values);

// The first of `count` blocks with a non-finite f16 scale or min (a corrupt file), or -1 when all are finite.
int64_t first_non_finite_block(QuantType type, const uint8_t* blocks, int64_t count);

// llama.cpp's reference quantizers for the 32-value types (quantize_row_*_ref, as gguf-py's): one block from
// `count` <= 32 values (the rest taken as zero). The K types have none here: their files come from llama-quantize.
// Throws InvalidArgument for a K type.
void quantize_block(QuantType type, const float* values, int64_t count, uint8_t* block);
bool can_quantize(QuantType type);

}  // namespace jagged
