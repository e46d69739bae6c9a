// Q8_0 (and Q4_0, Q5_0, Q4_1, Q4_K) weights: llama.cpp's quantization; the f32-activation path (bit-equal to the f32 kernel
// on the dequantized weight); the int8-activation path (avx512-vnni: activations rounded to Q8_0 blocks as
// llama.cpp does) bit-equal to a scalar model of that arithmetic and within the activation rounding of the f64
// reference; batch invariance of both.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "jagged/error.h"
#include "jagged/nested_tensor.h"
#include "jagged/ops.h"
#include "jagged/threads.h"
#include "core/quant_blocks.h"
#include "kernels/linear.h"
#include "testing/linear.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

using kernels::cpu::LinearQ8Path;

bool has_vnni() { return kernels::cpu::best_linear_q8_0_path() == LinearQ8Path::avx512_vnni; }

// The quantization error of one weight is at most half a step plus the f16 rounding of the scale over 127 steps:
// |w - d q| <= (0.5 + 127 * 2^-11) * max|block| / 127.
TEST(LinearQ8_0, QuantizesLikeLlamaCppWithinHalfAStep) {
  const Tensor weight = testing::random_tensor({50, 70}, 7, -3.0f, 3.0f);  // 70: a partial last block
  const ops::PackedWeight packed(weight, ops::WeightType::q8_0);
  EXPECT_EQ(packed.nbytes(), static_cast<size_t>(2 * 3 * kernels::cpu::kLinearQ8PanelBlockBytes));
  const Tensor dequantized = packed.unpack();
  for (int64_t o = 0; o < 50; ++o) {
    for (int64_t b = 0; b < 70; b += 32) {
      float amax = 0.0f;
      for (int64_t i = b; i < std::min<int64_t>(70, b + 32); ++i) amax = std::max(amax, std::fabs(weight.data<float>()[o * 70 + i]));
      const double step = amax / 127.0;
      for (int64_t i = b; i < std::min<int64_t>(70, b + 32); ++i) {
        const double error = std::fabs(double{dequantized.data<float>()[o * 70 + i]} - weight.data<float>()[o * 70 + i]);
        ASSERT_LE(error, (0.5 + 127.0 / 2048.0) * step + 1e-30) << o << " " << i;
      }
    }
  }
  // A block's largest value is exactly +-127 steps (llama.cpp's d = amax / 127), and an all-zero block is zero.
  uint16_t scale = 0;
  int8_t quants[32];
  const float values[3] = {0.5f, -2.0f, 1.0f};
  kernels::cpu::quantize_q8_0_block(values, 3, scale, quants);
  EXPECT_EQ(quants[1], -127);
  EXPECT_EQ(quants[0], 32);  // round(0.5 / (2 / 127)) = round(31.75)
  EXPECT_EQ(quants[3], 0);
  const float zeros[2] = {0.0f, 0.0f};
  kernels::cpu::quantize_q8_0_block(zeros, 2, scale, quants);
  EXPECT_EQ(f16_to_f32(scale), 0.0f);
  EXPECT_EQ(quants[0], 0);
}

// ---- the Q8_0 weight as blocks (what a GGUF file holds) and the scalar model of the int8 path ----

struct Q8Rows {
  int64_t rows = 0, in = 0, blocks = 0;
  std::vector<float> scales;   // [rows, blocks] the f16 scale widened; [rows, blocks, 2]: a scale per half (Q6_K)
  std::vector<int8_t> quants;  // [rows, blocks * 32], 0 past in
  std::vector<float> offsets;  // [rows, blocks] w = scale q - offset (Q4_1, Q4_K), or empty
};

// Weight rows quantized by llama.cpp's reference quantizer (quantize_q8_0_block), with the file's 34-byte blocks.
Q8Rows quantize_weight(const Tensor& weight, std::vector<uint8_t>& file_rows) {
  Q8Rows w{weight.dim(0), weight.dim(1), (weight.dim(1) + 31) / 32, {}, {}, {}};
  w.scales.resize(static_cast<size_t>(w.rows * w.blocks));
  w.quants.resize(static_cast<size_t>(w.rows * w.blocks * 32));
  file_rows.assign(static_cast<size_t>(w.rows * w.blocks * 34), 0);
  for (int64_t o = 0; o < w.rows; ++o) {
    for (int64_t b = 0; b < w.blocks; ++b) {
      uint16_t scale = 0;
      int8_t* quants = w.quants.data() + (o * w.blocks + b) * 32;
      kernels::cpu::quantize_q8_0_block(weight.data<float>() + o * w.in + b * 32, std::min<int64_t>(32, w.in - b * 32),
                                        scale, quants);
      w.scales[static_cast<size_t>(o * w.blocks + b)] = f16_to_f32(scale);
      uint8_t* block = file_rows.data() + (o * w.blocks + b) * 34;
      std::memcpy(block, &scale, 2);
      std::memcpy(block + 2, quants, 32);
    }
  }
  return w;
}

// llama.cpp's quantize_row_q8_0 on x86 (ggml-cpu/arch/x86/quants.c), in scalar code: per block of 32,
// amax = max |x|, d = f16(amax / 127), q = nearest-even(x * (127 / amax)).
Q8Rows quantize_activations(ConstMatrixView x) {
  Q8Rows q{x.rows, x.cols, (x.cols + 31) / 32, {}, {}, {}};
  q.scales.resize(static_cast<size_t>(q.rows * q.blocks));
  q.quants.assign(static_cast<size_t>(q.rows * q.blocks * 32), 0);
  for (int64_t r = 0; r < q.rows; ++r) {
    for (int64_t b = 0; b < q.blocks; ++b) {
      const int64_t count = std::min<int64_t>(32, q.in - b * 32);
      const float* values = x.row(r) + b * 32;
      float amax = 0.0f;
      for (int64_t i = 0; i < count; ++i) amax = std::max(amax, std::fabs(values[i]));
      q.scales[static_cast<size_t>(r * q.blocks + b)] = f16_to_f32(f32_to_f16(amax / 127.0f));
      const float multiplier = amax != 0.0f ? 127.0f / amax : 0.0f;
      for (int64_t i = 0; i < count; ++i) {
        const float scaled = values[i] * multiplier;
        q.quants[static_cast<size_t>((r * q.blocks + b) * 32 + i)] = static_cast<int8_t>(std::nearbyint(scaled));
      }
    }
  }
  return q;
}

// The int8 path's arithmetic in scalar code: per output, from the bias, acc = fma(float(dot), dx * dw, acc) with
// dot the exact int32 dot product of block b's quants, b in order (llama.cpp's vec_dot_q8_0_q8_0 per block); with
// a scale per half block (Q6_K), the same per half, low half first; with offsets, then
// acc = fma(-(dx * sum(qx)), offset, acc).
Tensor int8_reference(const Q8Rows& x, const Q8Rows& w, const float* bias) {
  Tensor out({x.rows, w.rows});
  for (int64_t r = 0; r < x.rows; ++r) {
    for (int64_t o = 0; o < w.rows; ++o) {
      float acc = bias != nullptr ? bias[o] : 0.0f;
      for (int64_t b = 0; b < x.blocks; ++b) {
        const float dx = x.scales[static_cast<size_t>(r * x.blocks + b)];
        const int64_t steps = static_cast<int64_t>(w.scales.size()) / (w.rows * w.blocks);  // 2: Q6_K's halves
        for (int64_t s = 0; s < steps; ++s) {
          int32_t dot = 0;
          for (int64_t k = s * 32 / steps; k < (s + 1) * 32 / steps; ++k) {
            dot += int32_t{x.quants[static_cast<size_t>((r * x.blocks + b) * 32 + k)]} *
                   int32_t{w.quants[static_cast<size_t>((o * w.blocks + b) * 32 + k)]};
          }
          acc = std::fma(static_cast<float>(dot), dx * w.scales[static_cast<size_t>((o * w.blocks + b) * steps + s)], acc);
        }
        if (!w.offsets.empty()) {
          int32_t sum = 0;
          for (int64_t k = 0; k < 32; ++k) sum += x.quants[static_cast<size_t>((r * x.blocks + b) * 32 + k)];
          acc = std::fma(-(dx * static_cast<float>(sum)), w.offsets[static_cast<size_t>(o * w.blocks + b)], acc);
        }
      }
      out.data<float>()[r * w.rows + o] = acc;
    }
  }
  return out;
}

// The kernel on a given path, the weight packed from the file's blocks.
Tensor run_kernel(ConstMatrixView x, const std::vector<uint8_t>& packed, int64_t out_features, const float* bias,
                  LinearQ8Path path) {
  Tensor out({x.rows, out_features});
  kernels::cpu::linear_packed_q8_0(x, packed.data(), out_features, bias, out.matrix(), path);
  return out;
}

std::vector<uint8_t> pack(const std::vector<uint8_t>& file_rows, int64_t out, int64_t in) {
  std::vector<uint8_t> packed(static_cast<size_t>(kernels::cpu::packed_linear_q8_0_bytes(out, in)));
  kernels::cpu::pack_linear_weight_q8_0_blocks(file_rows.data(), out, in, packed.data());
  return packed;
}

// Worst |actual - expected| / bound against the f64 reference on the dequantized weight and f32 x. The bound:
// the rounding of x to Q8_0 moves each value by at most (0.5 + 127 * 2^-11 + 2^-10) steps dx = max |block| / 127
// (half a step, the f16 rounding of dx over 127 steps, and the f32 rounding of x * 127 / amax), so the sum by
// sum_k |w_k| that much; plus the f32 accumulation of the block terms, (in + 2) eps of the sum of magnitudes.
double worst_error_over_activation_bound(ConstMatrixView x, const Tensor& weight, const float* bias,
                                         const Tensor& actual, const Tensor& expected) {
  const int64_t in = x.cols;
  const int64_t out = weight.dim(0);
  double worst = 0.0;
  for (int64_t r = 0; r < x.rows; ++r) {
    std::vector<double> half_steps(static_cast<size_t>(in));
    for (int64_t b = 0; b < in; b += 32) {
      double amax = 0.0;
      for (int64_t i = b; i < std::min<int64_t>(in, b + 32); ++i) amax = std::max(amax, std::fabs(double{x.row(r)[i]}));
      for (int64_t i = b; i < std::min<int64_t>(in, b + 32); ++i) {
        half_steps[static_cast<size_t>(i)] = (0.5 + 127.0 / 2048.0 + 1.0 / 1024.0) * amax / 127.0;
      }
    }
    for (int64_t o = 0; o < out; ++o) {
      double rounding = 0.0;
      double magnitude = bias != nullptr ? std::fabs(bias[o]) : 0.0;
      for (int64_t i = 0; i < in; ++i) {
        const double w = std::fabs(double{weight.data<float>()[o * in + i]});
        rounding += w * half_steps[static_cast<size_t>(i)];
        magnitude += w * (std::fabs(double{x.row(r)[i]}) + half_steps[static_cast<size_t>(i)]);
      }
      const double bound = rounding + (in + 2) * FLT_EPSILON * magnitude + FLT_MIN;
      const double error = std::fabs(double{actual.data<float>()[r * out + o]} - expected.data<float>()[r * out + o]);
      worst = std::max(worst, std::isnan(error) ? INFINITY : error / bound);
    }
  }
  return worst;
}

struct Features {
  int64_t in, out;
};
// Depth within one 32-block, partial blocks (33, 300), exactly one depth block of 128 and past several; out
// below / at / past a 48-wide panel.
const Features kFeatures[] = {{1, 3}, {33, 5}, {64, 96}, {128, 49}, {300, 200}, {576, 40}};

TEST(LinearQ8_0, Int8PathEqualsScalarModelAndIsWithinActivationRounding) {
  if (!has_vnni()) GTEST_SKIP() << "this CPU lacks AVX512-VNNI: the int8-activation path is not run here";
  for (const Features features : kFeatures) {
    std::vector<uint8_t> file_rows;
    const Q8Rows w = quantize_weight(testing::random_tensor({features.out, features.in}, 22), file_rows);
    const std::vector<uint8_t> packed = pack(file_rows, features.out, features.in);
    Tensor dequantized({features.out, features.in});
    kernels::cpu::unpack_linear_weight_q8_0(packed.data(), features.out, features.in, dequantized.data<float>());
    const Tensor bias = testing::random_tensor({features.out}, 23);
    for (const auto& length_case : testing::ragged_length_cases()) {
      const int64_t rows = NestedTensor::from_lengths(length_case.lengths, {features.in}).num_tokens();
      const Tensor x = testing::random_tensor({rows, features.in}, 21, -2.0f, 2.0f);
      const std::string where = length_case.name + " in " + std::to_string(features.in) + " out " +
                                std::to_string(features.out);
      for (const float* b : {bias.data<float>(), static_cast<const float*>(nullptr)}) {
        const Tensor actual = run_kernel(x.matrix(), packed, features.out, b, LinearQ8Path::avx512_vnni);
        const Tensor model = int8_reference(quantize_activations(x.matrix()), w, b);
        EXPECT_TRUE(testing::rows_bit_equal(actual.matrix(), model.matrix())) << where;
        Tensor expected({rows, features.out});
        kernels::reference::linear(x.matrix(), dequantized.data<float>(), b, expected.matrix());
        EXPECT_LE(worst_error_over_activation_bound(x.matrix(), dequantized, b, actual, expected), 1.0) << where;
      }
    }
  }
}

// Weights with every byte value (q = -128 .. 127, as a file may hold) and activations of widely different
// magnitudes per block (scales from 1e-6 to 1e3, all-zero blocks): the int32 dot products stay exact.
TEST(LinearQ8_0, Int8PathExactOverTheWholeQuantRange) {
  if (!has_vnni()) GTEST_SKIP() << "this CPU lacks AVX512-VNNI: the int8-activation path is not run here";
  const int64_t in = 256;
  const int64_t out = 100;
  std::mt19937 random(5);
  std::vector<uint8_t> file_rows(static_cast<size_t>(out * in / 32 * 34));
  for (auto& byte : file_rows) byte = static_cast<uint8_t>(random());
  Q8Rows w{out, in, in / 32, {}, {}, {}};
  for (int64_t block = 0; block < out * in / 32; ++block) {
    uint8_t* bytes = file_rows.data() + block * 34;
    const uint16_t scale = f32_to_f16(std::ldexp(1.0f, static_cast<int>(random() % 8) - 10));
    std::memcpy(bytes, &scale, 2);
    w.scales.push_back(f16_to_f32(scale));
    for (int k = 0; k < 32; ++k) w.quants.push_back(static_cast<int8_t>(bytes[2 + k]));
  }
  Tensor x = testing::random_tensor({70, in}, 6);
  for (int64_t r = 0; r < 70; ++r) {
    for (int64_t i = 0; i < in; ++i) {
      const int64_t block = i / 32;
      x.data<float>()[r * in + i] *= block == 3 ? 0.0f : std::pow(10.0f, static_cast<float>((r + block) % 10) - 6.0f);
    }
  }
  const Tensor actual = run_kernel(x.matrix(), pack(file_rows, out, in), out, nullptr, LinearQ8Path::avx512_vnni);
  EXPECT_TRUE(testing::rows_bit_equal(actual.matrix(), int8_reference(quantize_activations(x.matrix()), w, nullptr).matrix()));
}

// The activation rounding is llama.cpp's x86 one: ties to even (2.5 -> 2, -3.5 -> -4, 0.5 -> 0), where its
// reference quantizer for weights rounds half away from zero. With max |x| = 127 the step is exactly 1, and a
// one-hot weight (d = 1, q = 1) reads one quant back.
TEST(LinearQ8_0, Int8PathRoundsActivationsToNearestEven) {
  if (!has_vnni()) GTEST_SKIP() << "this CPU lacks AVX512-VNNI: the int8-activation path is not run here";
  const float values[] = {127.0f, 2.5f, -3.5f, 0.5f, -0.5f, 1.5f, 126.5f};
  const int64_t count = std::size(values);
  Tensor x = Tensor::zeros({1, 32});
  std::memcpy(x.data<float>(), values, sizeof(values));
  std::vector<uint8_t> file_rows(static_cast<size_t>(count * 34), 0);
  for (int64_t o = 0; o < count; ++o) {
    const uint16_t one = f32_to_f16(1.0f);
    std::memcpy(file_rows.data() + o * 34, &one, 2);
    file_rows[static_cast<size_t>(o * 34 + 2 + o)] = 1;
  }
  const Tensor actual = run_kernel(x.matrix(), pack(file_rows, count, 32), count, nullptr, LinearQ8Path::avx512_vnni);
  const float expected[] = {127.0f, 2.0f, -4.0f, 0.0f, -0.0f, 2.0f, 126.0f};
  for (int64_t o = 0; o < count; ++o) EXPECT_EQ(actual.data<float>()[o], expected[o]) << values[o];
}

// The 4- and 5-bit types on the int8 path (random quant bits, finite scales and mins): Q4_0 and Q5_0 as llama.cpp's
// vec_dot_q4_0_q8_0 / vec_dot_q5_0_q8_0 per block (q = nibble - 8, 5 bits - 16), Q4_1 and Q4_K with their per-32
// offsets; bit-equal to the scalar model, within the activation bound of the f64 reference, and what ops::linear
// runs by default on this CPU.
TEST(LinearQ8_0, BlockTypesInt8PathsEqualScalarModelAndAreWithinActivationRounding) {
  if (!has_vnni()) GTEST_SKIP() << "this CPU lacks AVX512-VNNI: the int8-activation path is not run here";
  for (const QuantType type : {QuantType::q4_0, QuantType::q5_0, QuantType::q4_1, QuantType::q5_1, QuantType::q4_k,
                               QuantType::q5_k, QuantType::q6_k}) {
    const QuantLayout& layout = quant_layout(type);
    const bool with_offsets = type != QuantType::q4_0 && type != QuantType::q5_0 && type != QuantType::q6_k;
    const ops::WeightType weight_type = ops::weight_type_of_blocks(dtype_of(type));
    const std::vector<Features> shapes =
        layout.values == 256 ? std::vector<Features>{{256, 3}, {512, 96}, {1024, 49}}
                             : std::vector<Features>{{32, 3}, {64, 96}, {320, 49}, {576, 40}, {1024, 100}};
    for (const Features features : shapes) {
      Tensor blocks({features.out, features.in}, dtype_of(type));
      std::mt19937 random(static_cast<uint32_t>(features.in));
      auto* bytes = static_cast<uint8_t*>(blocks.raw_data());
      for (size_t i = 0; i < blocks.nbytes(); ++i) bytes[i] = static_cast<uint8_t>(random());
      std::uniform_real_distribution<float> scale_of(-0.05f, 0.05f);
      Q8Rows w{features.out, features.in, features.in / 32, {}, {}, {}};
      for (int64_t block = 0; block < features.out * features.in / layout.values; ++block) {
        uint8_t* at = bytes + block * layout.bytes;
        for (int half = 0; half < (with_offsets ? 2 : 1); ++half) {  // d (and m or dmin); Q6_K's d at 208
          const uint16_t value = f32_to_f16(scale_of(random));
          std::memcpy(at + (type == QuantType::q6_k ? 208 : 2 * half), &value, 2);
        }
        float steps[16];
        float offsets[16];
        int8_t quants[256];
        decode_block_groups(type, at, steps, offsets, quants);
        for (int64_t g = 0; g < layout.values / quant_group_values(type); ++g) {
          w.scales.push_back(steps[g]);
          if (with_offsets) w.offsets.push_back(offsets[g]);
        }
        w.quants.insert(w.quants.end(), quants, quants + layout.values);
      }
      const ops::PackedWeight packed(blocks);
      ASSERT_EQ(packed.type(), weight_type);
      const Tensor dequantized = packed.unpack();
      const Tensor bias = testing::random_tensor({features.out}, 23);
      for (const auto& length_case : testing::ragged_length_cases()) {
        const int64_t rows = NestedTensor::from_lengths(length_case.lengths, {features.in}).num_tokens();
        const Tensor x = testing::random_tensor({rows, features.in}, 21, -2.0f, 2.0f);
        const std::string where = std::string(layout.name) + " " + length_case.name + " in " +
                                  std::to_string(features.in);
        Tensor actual({rows, features.out});
        kernels::cpu::linear_packed_blocks(type, x.matrix(), static_cast<const uint8_t*>(packed.data()), features.out,
                                           bias.data<float>(), actual.matrix(), LinearQ8Path::avx512_vnni);
        const Tensor model = int8_reference(quantize_activations(x.matrix()), w, bias.data<float>());
        EXPECT_TRUE(testing::rows_bit_equal(actual.matrix(), model.matrix())) << where;
        Tensor expected({rows, features.out});
        kernels::reference::linear(x.matrix(), dequantized.data<float>(), bias.data<float>(), expected.matrix());
        EXPECT_LE(worst_error_over_activation_bound(x.matrix(), dequantized, bias.data<float>(), actual, expected),
                  1.0)
            << where;
        const testing::ScopedEnv int8("JAGGED_Q8_ACTIVATIONS", "int8");
        Tensor from_ops({rows, features.out});
        ops::linear(x, packed, &bias, from_ops);
        EXPECT_TRUE(testing::rows_bit_equal(from_ops.matrix(), actual.matrix())) << where;
        EXPECT_EQ(ops::linear_path(weight_type), "avx512-vnni");
      }
    }
  }
}

// A NaN or infinite activation makes its row's outputs NaN (as on the f32 path), and only its row's.
TEST(LinearQ8_0, Int8PathPropagatesNonFiniteActivationsToTheirRowOnly) {
  if (!has_vnni()) GTEST_SKIP() << "this CPU lacks AVX512-VNNI: the int8-activation path is not run here";
  std::vector<uint8_t> file_rows;
  quantize_weight(testing::random_tensor({20, 96}, 61), file_rows);
  Tensor x = testing::random_tensor({4, 96}, 62);
  x.data<float>()[1 * 96 + 40] = std::numeric_limits<float>::quiet_NaN();
  x.data<float>()[2 * 96 + 7] = std::numeric_limits<float>::infinity();
  const Tensor actual = run_kernel(x.matrix(), pack(file_rows, 20, 96), 20, nullptr, LinearQ8Path::avx512_vnni);
  for (int64_t o = 0; o < 20; ++o) {
    EXPECT_TRUE(std::isfinite(actual.data<float>()[o])) << o;
    EXPECT_TRUE(std::isnan(actual.data<float>()[20 + o])) << o;
    EXPECT_TRUE(std::isnan(actual.data<float>()[40 + o])) << o;
    EXPECT_TRUE(std::isfinite(actual.data<float>()[60 + o])) << o;
  }
}

// JAGGED_Q8_ACTIVATIONS=f32: ops::linear takes the f32 path, bit-equal to the f32 kernel on the dequantized
// weight; by default the int8 path where the CPU has VNNI (bits of the kernel on that path); anything else is an
// error that names the choices.
TEST(LinearQ8_0, F32PathMatchesReferenceAndF32KernelOnTheDequantizedWeight) {
  const testing::ScopedEnv f32("JAGGED_Q8_ACTIVATIONS", "f32");
  EXPECT_EQ(ops::linear_path(ops::WeightType::q8_0),
            kernels::cpu::linear_q8_0_path_name(LinearQ8Path::f32));
  for (const Features features : kFeatures) {
    const Tensor weight = testing::random_tensor({features.out, features.in}, 22);
    const Tensor bias = testing::random_tensor({features.out}, 23);
    testing::expect_linear_matches_dequantized(ops::PackedWeight(weight, ops::WeightType::q8_0), bias, "q8_0");
  }
}

// A report's list of projection types: each type once, in first-seen order, with its count and path.
TEST(LinearQ8_0, DescribeWeightTypesCountsEachTypeWithItsPath) {
  using ops::WeightType;
  const std::vector<WeightType> types{WeightType::q8_0, WeightType::f32, WeightType::q8_0, WeightType::q6_k};
  EXPECT_EQ(ops::describe_weight_types(types),
            concat("q8_0 x2 (", ops::linear_path(WeightType::q8_0), "), f32 x1 (f32-fma (own GEMM)), q6_k x1 (",
                   ops::linear_path(WeightType::q6_k), ")"));
  EXPECT_EQ(ops::describe_weight_types({}), "");
}

TEST(LinearQ8_0, OpsTakesTheEnvironmentsPath) {
  const ops::PackedWeight packed(testing::random_tensor({70, 100}, 31), ops::WeightType::q8_0);
  const Tensor x = testing::random_tensor({9, 100}, 32);
  std::vector<uint8_t> bytes(packed.nbytes());
  std::memcpy(bytes.data(), packed.data(), bytes.size());
  for (const char* value : {"", "int8", "f32"}) {
    const testing::ScopedEnv env("JAGGED_Q8_ACTIVATIONS", value);
    const LinearQ8Path path =
        std::string(value) == "f32" ? LinearQ8Path::f32 : kernels::cpu::best_linear_q8_0_path();
    EXPECT_EQ(ops::linear_path(ops::WeightType::q8_0), kernels::cpu::linear_q8_0_path_name(path)) << value;
    Tensor from_ops({9, 70});
    ops::linear(x, packed, nullptr, from_ops);
    EXPECT_TRUE(testing::rows_bit_equal(from_ops.matrix(), run_kernel(x.matrix(), bytes, 70, nullptr, path).matrix()))
        << value;
  }
  if (has_vnni()) {
    const testing::ScopedEnv unset("JAGGED_Q8_ACTIVATIONS", "");
    EXPECT_EQ(ops::linear_path(ops::WeightType::q8_0), "avx512-vnni");
  }
  const testing::ScopedEnv wrong("JAGGED_Q8_ACTIVATIONS", "int4");
  Tensor out({9, 70});
  EXPECT_THROW(ops::linear(x, packed, nullptr, out), InvalidArgument);
  EXPECT_THROW(ops::linear_path(ops::WeightType::q8_0), InvalidArgument);
}

// Both paths: a row's bits do not depend on the other rows, its place in the batch or the thread count.
TEST(LinearQ8_0, RowResultIsIndependentOfBatch) {
  const Tensor x = testing::random_tensor({700, 1000}, 41);
  const ops::PackedWeight q8(testing::random_tensor({600, 1000}, 42), ops::WeightType::q8_0);
  const Tensor bias = testing::random_tensor({600}, 43);
  {
    const testing::ScopedEnv f32("JAGGED_Q8_ACTIVATIONS", "f32");
    testing::expect_rows_independent_of_batch(q8, x, bias, "q8_0 f32 path");
  }
  if (!has_vnni()) GTEST_SKIP() << "this CPU lacks AVX512-VNNI: only the f32 path was checked";
  const testing::ScopedEnv int8("JAGGED_Q8_ACTIVATIONS", "int8");
  testing::expect_rows_independent_of_batch(q8, x, bias, "q8_0 avx512-vnni path");
  // Depths that end mid-block and mid-depth-block.
  const Tensor x_odd = testing::random_tensor({300, 333}, 44);
  const ops::PackedWeight q8_odd(testing::random_tensor({97, 333}, 45), ops::WeightType::q8_0);
  testing::expect_rows_independent_of_batch(q8_odd, x_odd, testing::random_tensor({97}, 46), "q8_0 avx512-vnni odd");
}

}  // namespace
}  // namespace jagged
