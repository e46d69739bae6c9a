// The GEMM for the GGUF block types other than Q8_0 (Q4_0, Q4_1, Q5_1, Q4_K, Q5_K, Q6_K; Q5_0 is packed and run
// as Q8_0, see packs_as_q8_0). At packing every block is split into groups of 32 values (16 for Q6_K) with an f32
// step and offset each (decode_block_groups: w = step * q - offset) and the quants are laid out for the tile
// kernel: per group of a 48-wide panel, the 48 steps, the 48 offsets (types with a min only), then the quants, 48
// outputs side by side: nibbles for the 4-bit types (4 inputs per 32-bit lane, vpdpbusd's order: quant_position),
// one int8 per input otherwise. The f32 tile kernel dequantizes in registers: w = step * q (exact in f32) - offset
// (one rounding, as gguf-py's dequantizer), then the f32 FMA chain: the result is bit for bit the f32 kernel's on
// the dequantized weight, and the driver (linear_driver.h) keeps it batch-invariant. Memory: 0.63 B/value (Q4_0),
// 0.75 (Q4_1, Q4_K), 1.06 (Q5_0, as Q8_0), 1.25 (Q5_1, Q5_K, Q6_K), against 4 for f32. The 4-bit types also have
// an int8 path (AVX512-VNNI, below): x rounded to Q8_0 blocks and exact int32 block dot products.
#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <utility>
#include <vector>

#include <hwy/highway.h>

#include "core/quant_blocks.h"
#include "kernels/cpu/linear_driver.h"
#include "kernels/cpu/linear_int8.h"
#include "kernels/cpu/linear_tasks.h"
#include "kernels/linear.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace jagged::kernels::cpu {

namespace {

namespace hn = hwy::HWY_NAMESPACE;
using FloatTag = hn::ScalableTag<float>;
using FloatVec = hn::Vec<FloatTag>;

constexpr int64_t kPanelCols = 48;
constexpr int64_t kLanes = static_cast<int64_t>(HWY_MAX_BYTES / sizeof(float));
constexpr int kVectors = static_cast<int>(kPanelCols / kLanes);
constexpr int kTileRows = kLanes >= 16 ? 8 : 2;
constexpr int64_t kDepthBlock = 128;
constexpr int64_t kTaskRows = 128;
constexpr int64_t kMaxTaskPanels = 4;
static_assert(kPanelCols % kLanes == 0);

// How a type's groups are stored.
struct GroupFormat {
  int64_t group;  // values per group: 32, or 16 (Q6_K)
  bool nibbles;   // 4-bit quants, two inputs per byte, in vpdpbusd's order (quant_position)
  bool offsets;   // a per-group offset (the types with a min)
  int bias;       // added to a stored nibble to get the centred quant (Q4_0: -8)
  int64_t chunk_bytes() const {
    return (offsets ? 2 : 1) * kPanelCols * 4 + group * kPanelCols / (nibbles ? 2 : 1);
  }
};

GroupFormat group_format(QuantType type) {
  switch (type) {
    case QuantType::q4_0: return {32, true, false, -8};
    case QuantType::q4_1:
    case QuantType::q4_k: return {32, true, true, 0};
    case QuantType::q5_1: return {32, false, true, 0};
    case QuantType::q5_k: return {32, false, true, 0};
    case QuantType::q6_k: return {16, false, false, 0};
    case QuantType::q5_0:  // packed as Q8_0 (packs_as_q8_0)
    case QuantType::q8_0: return {32, false, false, 0};
  }
  return {32, false, false, 0};
}

// Where input k of a group of output j sits: byte and nibble shift from the group's quants. Nibbles: 4 lanes of
// 48 x 32 bits; lane (k % 16) / 4, byte k % 4 of output j's 32 bits, low nibble for k < 16: so a lane masked with
// 0x0f (or shifted by 4) holds 4 consecutive inputs per output as u8, what vpdpbusd multiplies (the int8 path
// below). int8: row k of 48 bytes.
struct QuantPosition {
  int64_t byte;
  int shift;
};
QuantPosition quant_position(const GroupFormat& format, int64_t k, int64_t j) {
  if (format.nibbles) return {((k % 16) / 4) * kPanelCols * 4 + j * 4 + k % 4, static_cast<int>((k / 16) * 4)};
  return {k * kPanelCols + j, 0};
}

// acc = init or the tile of c; acc += x[r, k] * (step q - offset)[k, :] for k < depth, groups from `weights`
// (the depth block's first); c = acc.
template <int kRows, int64_t kGroup, bool kNibbles, bool kOffsets, int kBias>
void block_tile(const void* x_data, int64_t x_stride, const void* weights, int64_t depth, const float* init,
                float* c, int64_t c_stride) {
  constexpr int64_t kChunkBytes = (kOffsets ? 2 : 1) * kPanelCols * 4 + kGroup * kPanelCols / (kNibbles ? 2 : 1);
  const FloatTag df;
  const hn::Rebind<int32_t, FloatTag> d32;
  const hn::Rebind<int8_t, FloatTag> di8;
  const auto* x = static_cast<const float*>(x_data);
  const auto* chunks = static_cast<const uint8_t*>(weights);
  FloatVec acc[kRows][kVectors];
  for (int r = 0; r < kRows; ++r) {
    for (int v = 0; v < kVectors; ++v) acc[r][v] = hn::LoadU(df, (init != nullptr ? init : c + r * c_stride) + v * kLanes);
  }
  for (int64_t group_begin = 0; group_begin < depth; group_begin += kGroup) {
    const uint8_t* chunk = chunks + group_begin / kGroup * kChunkBytes;
    FloatVec step[kVectors];
    FloatVec offset[kVectors];
    for (int v = 0; v < kVectors; ++v) {
      step[v] = hn::LoadU(df, reinterpret_cast<const float*>(chunk) + v * kLanes);
      offset[v] = kOffsets ? hn::LoadU(df, reinterpret_cast<const float*>(chunk) + kPanelCols + v * kLanes)
                           : hn::Zero(df);
    }
    const uint8_t* quants = chunk + (kOffsets ? 2 : 1) * kPanelCols * 4;
    const int64_t count = std::min(kGroup, depth - group_begin);
    for (int64_t k = 0; k < count; ++k) {
      FloatVec w[kVectors];
      for (int v = 0; v < kVectors; ++v) {
        FloatVec q;
        if constexpr (kNibbles) {
          const auto lanes = hn::LoadU(d32, reinterpret_cast<const int32_t*>(quants + ((k % 16) / 4) * kPanelCols * 4) +
                                                v * kLanes);
          const auto nibble = hn::And(hn::ShiftRightSame(lanes, static_cast<int>(8 * (k % 4) + 4 * (k / 16))),
                                      hn::Set(d32, 0x0f));
          q = hn::ConvertTo(df, hn::Add(nibble, hn::Set(d32, kBias)));
        } else {
          q = hn::ConvertTo(df, hn::PromoteTo(d32, hn::LoadU(di8, reinterpret_cast<const int8_t*>(quants) +
                                                                      k * kPanelCols + v * kLanes)));
        }
        w[v] = hn::Mul(step[v], q);  // exact
        if constexpr (kOffsets) w[v] = hn::Sub(w[v], offset[v]);
      }
      for (int r = 0; r < kRows; ++r) {
        const FloatVec broadcast = hn::Set(df, x[r * x_stride + group_begin + k]);
        for (int v = 0; v < kVectors; ++v) acc[r][v] = hn::MulAdd(broadcast, w[v], acc[r][v]);
      }
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int v = 0; v < kVectors; ++v) hn::StoreU(acc[r][v], df, c + r * c_stride + v * kLanes);
  }
}

template <int64_t kGroup, bool kNibbles, bool kOffsets, int kBias, int... kRows>
constexpr auto make_tiles(std::integer_sequence<int, kRows...>) {
  return std::array<LinearTileKernel, sizeof...(kRows)>{&block_tile<kRows + 1, kGroup, kNibbles, kOffsets, kBias>...};
}

template <int64_t kGroup, bool kNibbles, bool kOffsets, int kBias>
const LinearTileKernel* tiles_of() {
  static constexpr auto kTiles =
      make_tiles<kGroup, kNibbles, kOffsets, kBias>(std::make_integer_sequence<int, kTileRows>{});
  return kTiles.data();
}

const LinearTileKernel* tiles_for(QuantType type) {
  switch (type) {
    case QuantType::q4_0: return tiles_of<32, true, false, -8>();
    case QuantType::q4_1:
    case QuantType::q4_k: return tiles_of<32, true, true, 0>();
    case QuantType::q5_1:
    case QuantType::q5_k: return tiles_of<32, false, true, 0>();
    case QuantType::q6_k: return tiles_of<16, false, false, 0>();
    case QuantType::q5_0:  // packed as Q8_0 (packs_as_q8_0)
    case QuantType::q8_0: return tiles_of<32, false, false, 0>();
  }
  return nullptr;
}

#if defined(__x86_64__)
// ---- 4-bit types with int8 activations (AVX512-VNNI): Q4_0 as llama.cpp's vec_dot_q4_0_q8_0 per block; Q4_1 and
// Q4_K (a step and an offset per group of 32) likewise ----
// x rounded to Q8_0 blocks (linear_int8.h); per block, dot = sum over the 4 lanes of vpdpbusd(nibble, qx) for
// the low and the high nibbles, exact in int32. Q4_0: the stored nibble is q + 8, so dot starts at -8 sum(qx) (the
// offset taken back per row, with no byte of the weight added); acc = fma(float(dot), dx * step, acc). With an
// offset (w = step q - offset, q = the nibble): then acc = fma(-(dx * sum(qx)), offset, acc): the exact value of
// sum_k w_k dx qx_k up to those two roundings. (llama.cpp rounds x to Q8_1 for Q4_1 and to Q8_K blocks of 256 for
// Q4_K; the activation error bound is the same half step per value.)
constexpr int kVnniTileRows = 4;  // 4 x 3 int32 + 4 x 3 f32 accumulators + 6 nibble vectors + 2 broadcasts
constexpr int64_t kVnniDepthBlock = 512;
template <bool kOffsets>
constexpr int64_t kNibbleChunkBytes = (kOffsets ? 2 : 1) * kPanelCols * 4 + 32 * kPanelCols / 2;

template <int kRows, bool kOffsets>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void nibble_vnni_tile(const void* x_data, int64_t x_stride,
                                                                               const void* weights, int64_t depth,
                                                                               const float* init, float* c,
                                                                               int64_t c_stride) {
  const auto* x = static_cast<const uint32_t*>(x_data);
  const auto* chunks = static_cast<const uint8_t*>(weights);
  const __m512i low_nibbles = _mm512_set1_epi8(0x0f);
  constexpr int64_t kQuants = (kOffsets ? 2 : 1) * kPanelCols * 4;
  // The masked conversion below, all lanes on: the unmasked one trips GCC 12's -Wuninitialized inside
  // avx512fintrin.h when the file is built without -march=native.
  __m512 acc[kRows][3];
  for (int r = 0; r < kRows; ++r) {
    for (int v = 0; v < 3; ++v) acc[r][v] = _mm512_loadu_ps(init != nullptr ? init + v * 16 : c + r * c_stride + v * 16);
  }
  for (int64_t b = 0; b < ceil_div(depth, 32); ++b) {
    const uint8_t* chunk = chunks + b * kNibbleChunkBytes<kOffsets>;
    const uint32_t* x_units = x + b * kInt8XBlockUnits;
    __m512i dot[kRows][3];
    for (int r = 0; r < kRows; ++r) {
      // Q4_0: -8 sum(qx), a sixteenth of the stored -128 sum(qx), exactly.
      const __m512i correction =
          _mm512_set1_epi32(kOffsets ? 0 : static_cast<int32_t>(x_units[r * x_stride + 9]) / 16);
      for (int v = 0; v < 3; ++v) dot[r][v] = correction;
    }
    for (int64_t lane = 0; lane < 4; ++lane) {
      __m512i low[3];
      __m512i high[3];
      for (int v = 0; v < 3; ++v) {
        const __m512i bytes = _mm512_loadu_si512(chunk + kQuants + lane * kPanelCols * 4 + v * 64);
        low[v] = _mm512_and_si512(bytes, low_nibbles);
        high[v] = _mm512_and_si512(_mm512_srli_epi16(bytes, 4), low_nibbles);
      }
      for (int r = 0; r < kRows; ++r) {
        const __m512i x_low = _mm512_set1_epi32(static_cast<int>(x_units[r * x_stride + lane]));
        const __m512i x_high = _mm512_set1_epi32(static_cast<int>(x_units[r * x_stride + 4 + lane]));
        for (int v = 0; v < 3; ++v) {
          dot[r][v] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(dot[r][v], low[v], x_low), high[v], x_high);
        }
      }
    }
    for (int r = 0; r < kRows; ++r) {
      const float dx = std::bit_cast<float>(x_units[r * x_stride + 8]);
      const __m512 x_scale = _mm512_set1_ps(dx);
      // dx sum(qx), sum(qx) from the stored -128 sum(qx) (exact for a finite block).
      const __m512 x_sum =
          _mm512_set1_ps(dx * static_cast<float>(-(static_cast<int32_t>(x_units[r * x_stride + 9]) / 128)));
      for (int v = 0; v < 3; ++v) {
        const __m512 step = _mm512_loadu_ps(reinterpret_cast<const float*>(chunk) + v * 16);
        acc[r][v] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xffff, dot[r][v]), _mm512_mul_ps(x_scale, step), acc[r][v]);
        if constexpr (kOffsets) {
          const __m512 offset = _mm512_loadu_ps(reinterpret_cast<const float*>(chunk) + kPanelCols + v * 16);
          acc[r][v] = _mm512_fnmadd_ps(x_sum, offset, acc[r][v]);
        }
      }
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int v = 0; v < 3; ++v) _mm512_storeu_ps(c + r * c_stride + v * 16, acc[r][v]);
  }
}

template <bool kOffsets, int... kRows>
constexpr auto make_nibble_vnni_tiles(std::integer_sequence<int, kRows...>) {
  return std::array<LinearTileKernel, sizeof...(kRows)>{&nibble_vnni_tile<kRows + 1, kOffsets>...};
}
template <bool kOffsets>
constexpr auto kNibbleVnniTiles = make_nibble_vnni_tiles<kOffsets>(std::make_integer_sequence<int, kVnniTileRows>{});
template <bool kOffsets>
using NibbleVnniWeights = Int8BlockWeights<kPanelCols, kNibbleChunkBytes<kOffsets>, kVnniDepthBlock, kTaskRows,
                                           kMaxTaskPanels, kVnniTileRows, kNibbleVnniTiles<kOffsets>>;
#endif

struct GroupWeights : LinearInPlaceFormat<kPanelCols, kTileRows, kDepthBlock, kTaskRows, kMaxTaskPanels> {
  const uint8_t* packed;
  GroupFormat format;
  int64_t in_groups;
  const LinearTileKernel* tiles;
  LinearTileKernel tile(int rows) const { return tiles[rows - 1]; }
  const void* block(int64_t panel, int64_t depth_begin) const {
    return packed + (panel * in_groups + depth_begin / format.group) * format.chunk_bytes();
  }
  const void* next_block(int64_t panel, int64_t depth_begin) const { return block(panel, depth_begin); }
  int64_t block_bytes(int64_t depth) const { return ceil_div(depth, format.group) * format.chunk_bytes(); }
};

// Q5_0 is a Q8_0 block with quants in [-16, 15] (same f16 scale, w = d * q): packed losslessly in Q8_0's panel
// format, it takes Q8_0's kernels, the int8 path (llama.cpp's vec_dot_q5_0_q8_0 per block: the exact int32 dot of
// q and qx, times dx * d) and the f32 one. At 1.06 B/value against the file's 0.69: the 5-bit quants are not
// unpacked in the GEMM's inner loop.
bool packs_as_q8_0(QuantType type) { return type == QuantType::q5_0; }

// Q5_0 rows [out_features, ceil(in_features / 32)] of 22-byte blocks -> Q8_0 rows of 34-byte blocks.
std::vector<uint8_t> q5_0_rows_as_q8_0(const uint8_t* rows, int64_t out_features, int64_t in_features) {
  const int64_t blocks = out_features * ceil_div(in_features, 32);
  std::vector<uint8_t> q8_rows(static_cast<size_t>(blocks * 34));
  float step = 0.0f;
  float offset = 0.0f;
  int8_t quants[32];
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* block = rows + b * quant_layout(QuantType::q5_0).bytes;
    decode_block_groups(QuantType::q5_0, block, &step, &offset, quants);
    std::memcpy(q8_rows.data() + b * 34, block, 2);  // the f16 scale d, as stored
    std::memcpy(q8_rows.data() + b * 34 + 2, quants, 32);
  }
  return q8_rows;
}

int64_t groups_per_row(QuantType type, int64_t in_features) {
  return quant_row_bytes(type, in_features) / quant_layout(type).bytes * quant_layout(type).values /
         group_format(type).group;
}

}  // namespace

bool has_int8_linear_path(QuantType type) {
  switch (type) {
    case QuantType::q8_0:
    case QuantType::q5_0:  // as Q8_0
    case QuantType::q4_0:
    case QuantType::q4_1:
    case QuantType::q4_k: return true;
    case QuantType::q5_1:
    case QuantType::q5_k:
    case QuantType::q6_k: return false;
  }
  return false;
}

int64_t packed_linear_blocks_bytes(QuantType type, int64_t out_features, int64_t in_features) {
  if (packs_as_q8_0(type)) return packed_linear_q8_0_bytes(out_features, in_features);
  return ceil_div(out_features, kPanelCols) * groups_per_row(type, in_features) * group_format(type).chunk_bytes();
}

void pack_linear_weight_blocks(QuantType type, const uint8_t* rows, int64_t out_features, int64_t in_features,
                               uint8_t* packed) {
  if (packs_as_q8_0(type)) {
    const std::vector<uint8_t> q8_rows = q5_0_rows_as_q8_0(rows, out_features, in_features);
    return pack_linear_weight_q8_0_blocks(q8_rows.data(), out_features, in_features, packed);
  }
  const QuantLayout& layout = quant_layout(type);
  const GroupFormat format = group_format(type);
  const int64_t in_blocks = ceil_div(in_features, layout.values);
  const int64_t in_groups = groups_per_row(type, in_features);
  const int64_t groups_per_block = layout.values / format.group;
  const int64_t quant_offset = (format.offsets ? 2 : 1) * kPanelCols * 4;
  std::memset(packed, 0, static_cast<size_t>(packed_linear_blocks_bytes(type, out_features, in_features)));
  float steps[16];
  float offsets[16];
  int8_t quants[256];
  for (int64_t o = 0; o < out_features; ++o) {
    const int64_t panel = o / kPanelCols;
    const int64_t j = o % kPanelCols;
    for (int64_t b = 0; b < in_blocks; ++b) {
      decode_block_groups(type, rows + (o * in_blocks + b) * layout.bytes, steps, offsets, quants);
      for (int64_t g = 0; g < groups_per_block; ++g) {
        uint8_t* chunk = packed + (panel * in_groups + b * groups_per_block + g) * format.chunk_bytes();
        std::memcpy(chunk + j * 4, &steps[g], 4);
        if (format.offsets) std::memcpy(chunk + (kPanelCols + j) * 4, &offsets[g], 4);
        for (int64_t k = 0; k < format.group; ++k) {
          const int q = quants[g * format.group + k];
          const QuantPosition at = quant_position(format, k, j);
          if (format.nibbles) {
            chunk[quant_offset + at.byte] |= static_cast<uint8_t>((q - format.bias) << at.shift);
          } else {
            chunk[quant_offset + at.byte] = static_cast<uint8_t>(static_cast<int8_t>(q));
          }
        }
      }
    }
  }
}

void unpack_linear_row_blocks(QuantType type, const uint8_t* packed, int64_t in_features, int64_t row,
                              float* values) {
  if (packs_as_q8_0(type)) return unpack_linear_row_q8_0(packed, in_features, row, values);
  const GroupFormat format = group_format(type);
  const int64_t in_groups = groups_per_row(type, in_features);
  const int64_t quant_offset = (format.offsets ? 2 : 1) * kPanelCols * 4;
  const int64_t j = row % kPanelCols;
  for (int64_t i = 0; i < in_features; ++i) {
    const uint8_t* chunk = packed + ((row / kPanelCols) * in_groups + i / format.group) * format.chunk_bytes();
    const int64_t k = i % format.group;
    float step = 0.0f;
    float offset = 0.0f;
    std::memcpy(&step, chunk + j * 4, 4);
    if (format.offsets) std::memcpy(&offset, chunk + (kPanelCols + j) * 4, 4);
    const QuantPosition at = quant_position(format, k, j);
    const int q = format.nibbles ? ((chunk[quant_offset + at.byte] >> at.shift) & 0x0f) + format.bias
                                 : static_cast<int8_t>(chunk[quant_offset + at.byte]);
    const float scaled = step * static_cast<float>(q);
    values[i] = scaled - offset;
  }
}

void linear_packed_blocks(QuantType type, ConstMatrixView x, const uint8_t* packed, int64_t out_features,
                          const float* bias, MatrixView out, LinearQ8Path path) {
  if (packs_as_q8_0(type)) return linear_packed_q8_0(x, packed, out_features, bias, out, path);
#if defined(__x86_64__)
  if (has_int8_linear_path(type) && path == LinearQ8Path::avx512_vnni && cpu_has_avx512_vnni()) {
    const uint32_t* x_units = quantize_activations_q8_0(x);
    if (type == QuantType::q4_0) {
      using Weights = NibbleVnniWeights<false>;
      LinearDriver<Weights>::run(Weights{packed, ceil_div(x.cols, 32), x_units}, x, out_features, bias, out);
    } else {
      using Weights = NibbleVnniWeights<true>;
      LinearDriver<Weights>::run(Weights{packed, ceil_div(x.cols, 32), x_units}, x, out_features, bias, out);
    }
    return;
  }
#endif
  (void)path;  // the other types, or a CPU without VNNI: f32 activations
  const GroupWeights weights{{}, packed, group_format(type), groups_per_row(type, x.cols), tiles_for(type)};
  LinearDriver<GroupWeights>::run(weights, x, out_features, bias, out);
}

}  // namespace jagged::kernels::cpu
