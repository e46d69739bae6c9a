#include "core/quant_blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>

#include "jagged/dtype.h"
#include "jagged/error.h"

namespace jagged {

namespace {

constexpr QuantLayout kLayouts[] = {
    {"Q4_0", 2, 32, 18},   {"Q4_1", 3, 32, 20},    {"Q5_0", 6, 32, 22},    {"Q5_1", 7, 32, 24},
    {"Q8_0", 8, 32, 34},   {"Q4_K", 12, 256, 144}, {"Q5_K", 13, 256, 176}, {"Q6_K", 14, 256, 210},
};

float half(const uint8_t* bytes) {
  uint16_t bits = 0;
  std::memcpy(&bits, bytes, 2);
  return f16_to_f32(bits);
}

void store_half(float value, uint8_t* bytes) {
  const uint16_t bits = f32_to_f16(value);
  std::memcpy(bytes, &bits, 2);
}

// Value i of a 32-value block's nibbles: low nibble of byte i, then the high nibbles.
int nibble(const uint8_t* qs, int i) { return i < 16 ? qs[i] & 0x0f : qs[i - 16] >> 4; }

uint32_t fifth_bits(const uint8_t* qh) {
  uint32_t bits = 0;
  std::memcpy(&bits, qh, 4);  // little-endian, as the file
  return bits;
}

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K super-block (gguf-py Q4_K.get_scale_min).
void k_scale_min(const uint8_t* scales, int j, int& scale, int& min) {
  if (j < 4) {
    scale = scales[j] & 0x3f;
    min = scales[j + 4] & 0x3f;
  } else {
    scale = (scales[j + 4] & 0x0f) | ((scales[j - 4] >> 2) & 0x30);
    min = (scales[j + 4] >> 4) | ((scales[j] >> 2) & 0x30);
  }
}

// Q4_K and Q5_K: w = (d sc) q - (dmin m), each product rounded to f32 before the subtraction (as numpy does).
void dequantize_k(const uint8_t* block, const uint8_t* qh, const uint8_t* qs, float* values) {
  const float d = half(block);
  const float dmin = half(block + 2);
  const uint8_t* scales = block + 4;
  for (int j = 0; j < 8; ++j) {
    int scale = 0;
    int min = 0;
    k_scale_min(scales, j, scale, min);
    const float step = d * static_cast<float>(scale);
    const float offset = dmin * static_cast<float>(min);
    const uint8_t* bytes = qs + (j / 2) * 32;
    const int shift = (j % 2) * 4;
    for (int i = 0; i < 32; ++i) {
      int q = (bytes[i] >> shift) & 0x0f;
      if (qh != nullptr) q |= ((qh[i] >> j) & 1) << 4;
      const float scaled = step * static_cast<float>(q);
      values[j * 32 + i] = scaled - offset;
    }
  }
}

void dequantize_q6_k(const uint8_t* block, float* values) {
  const uint8_t* ql = block;
  const uint8_t* qh = block + 128;
  const auto* scales = reinterpret_cast<const int8_t*>(block + 192);
  const float d = half(block + 208);
  for (int e = 0; e < 256; ++e) {
    const int half_index = e / 128;  // each half of the super-block: 64 ql bytes, 32 qh bytes
    const int r = e % 128;
    const int low = (ql[half_index * 64 + r % 64] >> ((r / 64) * 4)) & 0x0f;
    const int high = (qh[half_index * 32 + r % 32] >> ((r / 32) * 2)) & 0x03;
    const float step = d * static_cast<float>(scales[e / 16]);
    values[e] = step * static_cast<float>((low | (high << 4)) - 32);
  }
}

// The value of largest magnitude (the first on ties), as numpy's argmax of abs.
float signed_max(const float* values, int64_t count) {
  float best = 0.0f;
  float best_abs = -1.0f;
  for (int64_t i = 0; i < count; ++i) {
    if (std::fabs(values[i]) > best_abs) {
      best_abs = std::fabs(values[i]);
      best = values[i];
    }
  }
  return best;
}

// q = clip(trunc(v * id + bias), 0, top) (gguf-py's quantize_blocks for Q4_0 .. Q5_1).
uint8_t truncated(float scaled_plus_bias, int top) {
  return static_cast<uint8_t>(std::clamp(static_cast<int>(std::trunc(scaled_plus_bias)), 0, top));
}

}  // namespace

const QuantLayout& quant_layout(QuantType type) { return kLayouts[static_cast<size_t>(type)]; }

std::optional<QuantType> quant_type_of_ggml(uint32_t ggml_type) {
  for (const QuantType type : kQuantTypes) {
    if (quant_layout(type).ggml_type == ggml_type) return type;
  }
  return std::nullopt;
}

std::optional<QuantType> quant_type_of(DType dtype) {
  const int index = static_cast<int>(dtype) - static_cast<int>(DType::q4_0);
  if (index < 0 || index >= static_cast<int>(std::size(kQuantTypes))) return std::nullopt;
  return kQuantTypes[index];
}

DType dtype_of(QuantType type) { return static_cast<DType>(static_cast<int>(DType::q4_0) + static_cast<int>(type)); }

int64_t quant_row_bytes(QuantType type, int64_t values) {
  const QuantLayout& layout = quant_layout(type);
  return (values + layout.values - 1) / layout.values * layout.bytes;
}

void dequantize_block(QuantType type, const uint8_t* block, float* values) {
  switch (type) {
    case QuantType::q4_0: {
      const float d = half(block);
      for (int i = 0; i < 32; ++i) values[i] = d * static_cast<float>(nibble(block + 2, i) - 8);
      return;
    }
    case QuantType::q4_1: {
      const float d = half(block);
      const float m = half(block + 2);
      for (int i = 0; i < 32; ++i) {
        const float scaled = d * static_cast<float>(nibble(block + 4, i));
        values[i] = scaled + m;
      }
      return;
    }
    case QuantType::q5_0: {
      const float d = half(block);
      const uint32_t qh = fifth_bits(block + 2);
      for (int i = 0; i < 32; ++i) {
        const int q = nibble(block + 6, i) | static_cast<int>(((qh >> i) & 1) << 4);
        values[i] = d * static_cast<float>(q - 16);
      }
      return;
    }
    case QuantType::q5_1: {
      const float d = half(block);
      const float m = half(block + 2);
      const uint32_t qh = fifth_bits(block + 4);
      for (int i = 0; i < 32; ++i) {
        const int q = nibble(block + 8, i) | static_cast<int>(((qh >> i) & 1) << 4);
        const float scaled = d * static_cast<float>(q);
        values[i] = scaled + m;
      }
      return;
    }
    case QuantType::q8_0: {
      const float d = half(block);
      for (int i = 0; i < 32; ++i) values[i] = static_cast<float>(static_cast<int8_t>(block[2 + i])) * d;
      return;
    }
    case QuantType::q4_k: dequantize_k(block, nullptr, block + 16, values); return;
    case QuantType::q5_k: dequantize_k(block, block + 16, block + 48, values); return;
    case QuantType::q6_k: dequantize_q6_k(block, values); return;
  }
}

int64_t quant_group_values(QuantType type) { return type == QuantType::q6_k ? 16 : 32; }

KBlockScales k_block_scales(QuantType type, const uint8_t* block) {
  KBlockScales scales;
  switch (type) {
    case QuantType::q4_k:
    case QuantType::q5_k:
      std::memcpy(&scales.d, block, 2);
      std::memcpy(&scales.dmin, block + 2, 2);
      for (int j = 0; j < 8; ++j) {
        int scale = 0;
        int min = 0;
        k_scale_min(block + 4, j, scale, min);
        scales.sub_scales[j] = static_cast<int8_t>(scale);  // 6 bits
        scales.sub_mins[j] = static_cast<int8_t>(min);
      }
      return scales;
    case QuantType::q6_k:
      std::memcpy(&scales.d, block + 208, 2);
      std::memcpy(scales.sub_scales, block + 192, 16);
      return scales;
    case QuantType::q4_0:
    case QuantType::q4_1:
    case QuantType::q5_0:
    case QuantType::q5_1:
    case QuantType::q8_0: break;
  }
  throw InvalidArgument(concat(quant_layout(type).name, " has no super-blocks"));
}

void decode_block_groups(QuantType type, const uint8_t* block, float* steps, float* offsets, int8_t* quants) {
  switch (type) {
    case QuantType::q4_0:
    case QuantType::q5_0:
    case QuantType::q8_0: {
      steps[0] = half(block);
      offsets[0] = 0.0f;
      const uint32_t qh = type == QuantType::q5_0 ? fifth_bits(block + 2) : 0;
      for (int i = 0; i < 32; ++i) {
        if (type == QuantType::q8_0) {
          quants[i] = static_cast<int8_t>(block[2 + i]);
        } else if (type == QuantType::q4_0) {
          quants[i] = static_cast<int8_t>(nibble(block + 2, i) - 8);
        } else {
          quants[i] = static_cast<int8_t>((nibble(block + 6, i) | static_cast<int>(((qh >> i) & 1) << 4)) - 16);
        }
      }
      return;
    }
    case QuantType::q4_1:
    case QuantType::q5_1: {
      steps[0] = half(block);
      offsets[0] = -half(block + 2);
      const bool five = type == QuantType::q5_1;
      const uint32_t qh = five ? fifth_bits(block + 4) : 0;
      for (int i = 0; i < 32; ++i) {
        quants[i] = static_cast<int8_t>(nibble(block + (five ? 8 : 4), i) | static_cast<int>(((qh >> i) & 1) << 4));
      }
      return;
    }
    case QuantType::q4_k:
    case QuantType::q5_k: {
      const KBlockScales scales = k_block_scales(type, block);
      const float d = f16_to_f32(scales.d);
      const float dmin = f16_to_f32(scales.dmin);
      const uint8_t* qh = type == QuantType::q5_k ? block + 16 : nullptr;
      const uint8_t* qs = block + (qh != nullptr ? 48 : 16);
      for (int j = 0; j < 8; ++j) {
        steps[j] = d * static_cast<float>(scales.sub_scales[j]);
        offsets[j] = dmin * static_cast<float>(scales.sub_mins[j]);
        for (int i = 0; i < 32; ++i) {
          int q = (qs[(j / 2) * 32 + i] >> ((j % 2) * 4)) & 0x0f;
          if (qh != nullptr) q |= ((qh[i] >> j) & 1) << 4;
          quants[j * 32 + i] = static_cast<int8_t>(q);
        }
      }
      return;
    }
    case QuantType::q6_k: {
      const KBlockScales scales = k_block_scales(type, block);
      const float d = f16_to_f32(scales.d);
      for (int g = 0; g < 16; ++g) {
        steps[g] = d * static_cast<float>(scales.sub_scales[g]);
        offsets[g] = 0.0f;
      }
      for (int e = 0; e < 256; ++e) {
        const int half_index = e / 128;
        const int r = e % 128;
        const int low = (block[half_index * 64 + r % 64] >> ((r / 64) * 4)) & 0x0f;
        const int high = (block[128 + half_index * 32 + r % 32] >> ((r / 32) * 2)) & 0x03;
        quants[e] = static_cast<int8_t>((low | (high << 4)) - 32);
      }
      return;
    }
  }
}

void dequantize_row(QuantType type, const uint8_t* blocks, int64_t count, float* values) {
  const QuantLayout& layout = quant_layout(type);
  for (int64_t b = 0; b < count / layout.values; ++b) {
    dequantize_block(type, blocks + b * layout.bytes, values + b * layout.values);
  }
}

int64_t first_non_finite_block(QuantType type, const uint8_t* blocks, int64_t count) {
  const QuantLayout& layout = quant_layout(type);
  const auto non_finite = [](const uint8_t* field) {
    uint16_t bits = 0;
    std::memcpy(&bits, field, 2);
    return (bits & 0x7c00) == 0x7c00;
  };
  for (int64_t b = 0; b < count; ++b) {
    const uint8_t* block = blocks + b * layout.bytes;
    bool bad = false;
    switch (type) {
      case QuantType::q4_0: case QuantType::q5_0: case QuantType::q8_0: bad = non_finite(block); break;
      case QuantType::q4_1: case QuantType::q5_1: case QuantType::q4_k: case QuantType::q5_k:
        bad = non_finite(block) || non_finite(block + 2);
        break;
      case QuantType::q6_k: bad = non_finite(block + 208); break;
    }
    if (bad) return b;
  }
  return -1;
}

bool can_quantize(QuantType type) { return quant_layout(type).values == 32; }

void quantize_block(QuantType type, const float* source, int64_t count, uint8_t* block) {
  if (!can_quantize(type)) {
    throw InvalidArgument(concat("no quantizer for ", quant_layout(type).name,
                                 " here: make such files with llama.cpp's llama-quantize"));
  }
  float values[32] = {};
  std::copy(source, source + std::min<int64_t>(count, 32), values);
  std::memset(block, 0, static_cast<size_t>(quant_layout(type).bytes));
  const auto inverse = [](float d) { return d == 0.0f ? 0.0f : 1.0f / d; };
  switch (type) {
    case QuantType::q4_0:
    case QuantType::q5_0: {
      const bool five = type == QuantType::q5_0;
      const float d = signed_max(values, 32) / (five ? -16.0f : -8.0f);
      const float id = inverse(d);
      store_half(d, block);
      uint8_t* qs = block + (five ? 6 : 2);
      uint32_t qh = 0;
      for (int i = 0; i < 32; ++i) {
        const float scaled = values[i] * id;
        const uint8_t q = truncated(scaled + (five ? 16.5f : 8.5f), five ? 31 : 15);
        qs[i % 16] |= static_cast<uint8_t>((q & 0x0f) << (i < 16 ? 0 : 4));
        qh |= static_cast<uint32_t>(q >> 4) << i;
      }
      if (five) std::memcpy(block + 2, &qh, 4);
      return;
    }
    case QuantType::q4_1:
    case QuantType::q5_1: {
      const bool five = type == QuantType::q5_1;
      const float max = *std::max_element(values, values + 32);
      const float min = *std::min_element(values, values + 32);
      const float d = (max - min) / (five ? 31.0f : 15.0f);
      const float id = inverse(d);
      store_half(d, block);
      store_half(min, block + 2);
      uint8_t* qs = block + (five ? 8 : 4);
      uint32_t qh = 0;
      for (int i = 0; i < 32; ++i) {
        const float scaled = (values[i] - min) * id;
        const uint8_t q = truncated(scaled + 0.5f, five ? 31 : 15);
        qs[i % 16] |= static_cast<uint8_t>((q & 0x0f) << (i < 16 ? 0 : 4));
        qh |= static_cast<uint32_t>(q >> 4) << i;
      }
      if (five) std::memcpy(block + 4, &qh, 4);
      return;
    }
    case QuantType::q8_0: {
      float amax = 0.0f;
      for (const float value : values) amax = std::max(amax, std::fabs(value));
      const float d = amax / 127.0f;
      const float id = inverse(d);
      store_half(d, block);
      for (int i = 0; i < 32; ++i) block[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(std::round(values[i] * id)));
      return;
    }
    default: return;
  }
}

}  // namespace jagged
