// GGUF block-type weights (Q4_0 .. Q6_K) kept quantized in a PackedWeight: the kernel against the f32 reference
// on the dequantized weight (ragged row counts 0, 1, many, past a tile), bit equality with the f32 kernel on that
// weight (the blocks are dequantized exactly, then the f32 tile kernel runs), and batch invariance bit for bit.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <random>

#include "core/quant_blocks.h"
#include "jagged/nested_tensor.h"
#include "jagged/ops.h"
#include "jagged/threads.h"
#include "kernels/linear.h"
#include "testing/linear.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

// A [out, in] weight of block type `type` with random quants and finite random scales: every byte random, then
// each f16 field (scales, mins) set to a value in [-scale_range, scale_range].
Tensor random_blocks(QuantType type, int64_t out, int64_t in, uint32_t seed) {
  Tensor weight({out, in}, dtype_of(type));
  std::mt19937 random(seed);
  auto* bytes = static_cast<uint8_t*>(weight.raw_data());
  for (size_t i = 0; i < weight.nbytes(); ++i) bytes[i] = static_cast<uint8_t>(random());
  std::uniform_real_distribution<float> uniform(-0.05f, 0.05f);
  const QuantLayout& layout = quant_layout(type);
  const auto set_half = [&](uint8_t* field) {
    const uint16_t bits = f32_to_f16(uniform(random));
    std::memcpy(field, &bits, 2);
  };
  for (int64_t b = 0; b < static_cast<int64_t>(weight.nbytes()) / layout.bytes; ++b) {
    uint8_t* block = bytes + b * layout.bytes;
    switch (type) {
      case QuantType::q4_0: case QuantType::q5_0: case QuantType::q8_0: set_half(block); break;
      case QuantType::q4_1: case QuantType::q5_1: case QuantType::q4_k: case QuantType::q5_k:
        set_half(block);
        set_half(block + 2);
        break;
      case QuantType::q6_k: set_half(block + 208); break;
    }
  }
  return weight;
}

// Packed bytes per 32 values of a row: quants (4, 5, 6 or 8 bits as nibbles, fifth-bit masks or int8) and steps.
int64_t packed_bytes_per_32_values(QuantType type) {
  switch (type) {
    case QuantType::q4_0: return 16 + 2;      // nibbles, f16 d: the file's 18
    case QuantType::q5_0: return 16 + 4 + 2;  // nibbles, fifth bits, f16 d: the file's 22
    case QuantType::q4_1: return 16 + 4;      // f16 d and m
    case QuantType::q5_1: return 16 + 4 + 4;
    case QuantType::q4_k: return 16 + 6;      // f16 d and dmin, int8 scale and min per 32
    case QuantType::q5_k: return 16 + 4 + 6;
    case QuantType::q6_k: return 16 + 8 + 4;  // nibbles, two bit planes, f16 d, an int8 scale per 16
    case QuantType::q8_0: return 32 + 2;
  }
  return 0;
}

TEST(LinearBlocks, KeptInTheirTypeAndUnpackToTheDequantizedWeight) {
  for (const QuantType type : kQuantTypes) {
    const int64_t in = 2 * quant_layout(type).values;
    const Tensor blocks = random_blocks(type, 50, in, 3);
    const ops::PackedWeight packed(blocks, ops::WeightType::f32);  // the f32 request does not widen blocks
    EXPECT_EQ(ops::weight_type_name(packed.type()), ops::weight_type_name(ops::weight_type_of_blocks(dtype_of(type))));
    Tensor expected({50, in});
    dequantize_row(type, static_cast<const uint8_t*>(blocks.raw_data()), 50 * in, expected.data<float>());
    const Tensor unpacked = packed.unpack();
    EXPECT_EQ(std::memcmp(unpacked.raw_data(), expected.raw_data(), expected.nbytes()), 0) << quant_layout(type).name;
    // Kept quantized, over the 96 rows of two 48-wide panels: the file's bytes for Q4_0 and Q5_0 (and Q8_0, in
    // its own format), the file's scale factors per 32 values for the others; f32 takes 4.
    EXPECT_EQ(packed.nbytes(), packed_bytes_per_32_values(type) * 96 * in / 32) << quant_layout(type).name;
  }
}

TEST(LinearBlocks, RejectsRowsThatAreNotWholeBlocks) {
  Tensor blocks({4, 48}, DType::q4_0);  // 48 values: one and a half blocks
  EXPECT_THROW(ops::PackedWeight{blocks}, InvalidArgument);
}

TEST(LinearBlocks, KTypesCannotBeQuantizedFromF32) {
  const Tensor weight = testing::random_tensor({8, 256}, 5);
  EXPECT_THROW(ops::PackedWeight(weight, ops::WeightType::q4_k), InvalidArgument);
  EXPECT_THROW(ops::PackedWeight(weight, ops::WeightType::q6_k), InvalidArgument);
}

TEST(LinearBlocks, MatchesReferenceAndF32KernelOnTheDequantizedWeight) {
  // Q8_0 on its f32-activation path (the int8 one rounds x: linear_q8_0_test).
  const testing::ScopedEnv f32_activations("JAGGED_Q8_ACTIVATIONS", "f32");
  for (const QuantType type : kQuantTypes) {
    const int64_t values = quant_layout(type).values;
    struct Features {
      int64_t in, out;
    };
    // in: one block, several (past the kernel's 128-deep block), out: one panel or less, and past a panel.
    for (const Features features : {Features{values, 3}, Features{values * (values == 32 ? 9 : 2), 100}}) {
      const Tensor blocks = random_blocks(type, features.out, features.in, 22);
      const Tensor bias = testing::random_tensor({features.out}, 23);
      testing::expect_linear_matches_dequantized(ops::PackedWeight(blocks), bias, std::string(quant_layout(type).name));
    }
  }
}

TEST(LinearBlocks, RowResultIsIndependentOfBatchAndThreads) {
  for (const QuantType type : kQuantTypes) {
    const Tensor x = testing::random_tensor({300, 512}, 41);
    const ops::PackedWeight weight(random_blocks(type, 200, 512, 42));
    testing::expect_rows_independent_of_batch(weight, x, testing::random_tensor({200}, 43),
                                              std::string(quant_layout(type).name));
  }
}

// A fused projection whose parts have different types: each part in its own type, outputs side by side.
TEST(LinearBlocks, StackedPartsKeepTheirTypes) {
  const Tensor q5 = random_blocks(QuantType::q5_0, 40, 64, 1);
  const Tensor q8 = random_blocks(QuantType::q8_0, 20, 64, 2);
  const Tensor f32 = testing::random_tensor({7, 64}, 3);
  std::vector<ops::PackedWeight> parts;
  parts.emplace_back(q5);
  parts.emplace_back(q8);
  parts.emplace_back(f32);
  const ops::PackedWeight stacked = ops::PackedWeight::stack(std::move(parts));
  EXPECT_EQ(stacked.out_features(), 67);
  EXPECT_EQ(stacked.parts()[0].type(), ops::WeightType::q5_0);
  EXPECT_EQ(stacked.parts()[1].type(), ops::WeightType::q8_0);
  const Tensor bias = testing::random_tensor({67}, 4);
  const Tensor x = testing::random_tensor({130, 64}, 5);
  // The Q8_0 part on its f32-activation path (the int8 one rounds x: linear_q8_0_test).
  const testing::ScopedEnv f32_activations("JAGGED_Q8_ACTIVATIONS", "f32");
  Tensor actual({130, 67});
  ops::linear(x, stacked, &bias, actual);
  // The same as one weight of the dequantized rows: each output column's chain does not see the others.
  const Tensor whole = stacked.unpack();
  Tensor expected({130, 67});
  ops::linear(x, ops::PackedWeight(whole), &bias, expected);
  EXPECT_TRUE(testing::rows_bit_equal(actual.matrix(), expected.matrix()));
  std::vector<ops::PackedWeight> mismatched;
  mismatched.emplace_back(q5);
  mismatched.emplace_back(testing::random_tensor({3, 32}, 6));
  EXPECT_THROW(ops::PackedWeight::stack(std::move(mismatched)), InvalidArgument);
}

// q4_0 .. q5_1 quantized from f32 at packing: within a step of the block's scale of the original.
TEST(LinearBlocks, QuantizesFromF32WithinAStep) {
  const Tensor weight = testing::random_tensor({20, 70}, 7, -3.0f, 3.0f);  // 70: a partial last block
  for (const ops::WeightType type :
       {ops::WeightType::q4_0, ops::WeightType::q4_1, ops::WeightType::q5_0, ops::WeightType::q5_1}) {
    const ops::PackedWeight packed(weight, type);
    EXPECT_EQ(packed.type(), type);
    const Tensor back = packed.unpack();
    const bool four = type == ops::WeightType::q4_0 || type == ops::WeightType::q4_1;
    for (int64_t i = 0; i < weight.numel(); ++i) {
      // range 6 over 15 (or 31) steps, plus the f16 rounding of the scale
      ASSERT_LE(std::fabs(back.data<float>()[i] - weight.data<float>()[i]), (four ? 6.0 / 15 : 6.0 / 31) * 1.01)
          << ops::weight_type_name(type) << " " << i;
    }
  }
}

}  // namespace
}  // namespace jagged
