// Activations rounded to Q8_0 blocks for the int8 dot-product paths (AVX512-VNNI) of the quantized GEMMs (Q8_0 in
// linear_q8_0.cpp, Q4_0 in linear_blocks.cpp), as llama.cpp does for all its quantized types.
#pragma once

#include <cstdint>

#include "jagged/tensor.h"

namespace jagged::kernels::cpu {

// One row's block of 32 inputs, rounded: kInt8XBlockUnits 32-bit units: 8 units of 4 int8 quants qx (inputs 4u ..
// 4u + 3 in unit u), the scale dx (f32 bits of the f16-rounded value), and -128 sum(qx) (the correction of a
// weight stored as q + 128; a weight stored as q + 8 takes a sixteenth of it).
inline constexpr int64_t kInt8XBlockUnits = 10;

// Whether this CPU runs the int8 paths (cpuid: AVX512F, AVX512BW, AVX512-VNNI).
bool cpu_has_avx512_vnni();

// x [rows, in_features] -> [rows, ceil(in_features / 32) * kInt8XBlockUnits] units, every row rounded as
// llama.cpp's quantize_row_q8_0 for x86 (zero past in_features), rows in parallel. The buffer is the calling
// thread's, grown to the largest call and valid until its next call. Only where cpu_has_avx512_vnni().
const uint32_t* quantize_activations_q8_0(ConstMatrixView x);

}  // namespace jagged::kernels::cpu
