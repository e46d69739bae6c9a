#include "jagged/tensor.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "jagged/dtype.h"
#include "jagged/error.h"

namespace jagged {
namespace {

TEST(Tensor, CloneIsADeepCopy) {
  Tensor original = Tensor::from_floats(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor copy = original.clone();
  EXPECT_EQ(copy.shape(), original.shape());
  EXPECT_EQ(copy.dtype(), DType::f32);
  EXPECT_NE(copy.raw_data(), original.raw_data());
  EXPECT_EQ(std::memcmp(copy.raw_data(), original.raw_data(), original.nbytes()), 0);
  copy.data<float>()[0] = 42.0f;
  EXPECT_EQ(original.data<float>()[0], 1.0f);
  EXPECT_FALSE(Tensor().clone().defined());
}

// to_f32 widens f16 and bf16 exactly (the values f16_to_f32/bf16_to_f32 give: every one of the 65536 patterns,
// subnormals, infinities and NaNs included), copies f32, and refuses other dtypes.
TEST(Tensor, ToF32WidensHalvesExactly) {
  for (const DType half : {DType::f16, DType::bf16}) {
    Tensor bits({65536}, half);
    auto* raw = static_cast<uint16_t*>(bits.raw_data());
    for (uint32_t i = 0; i < 65536; ++i) raw[i] = static_cast<uint16_t>(i);
    const Tensor widened = bits.to_f32();
    ASSERT_EQ(widened.dtype(), DType::f32);
    for (uint32_t i = 0; i < 65536; ++i) {
      const auto pattern = static_cast<uint16_t>(i);
      const float want = half == DType::f16 ? f16_to_f32(pattern) : bf16_to_f32(pattern);
      const float got = widened.data<float>()[i];
      ASSERT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(want)) << dtype_name(half) << " " << i;
    }
  }
  Tensor f32({3});
  f32.data<float>()[1] = 2.5f;
  const Tensor copy = f32.to_f32();
  EXPECT_NE(copy.data<float>(), f32.data<float>());
  EXPECT_EQ(copy.data<float>()[1], 2.5f);
  EXPECT_THROW(Tensor({4}, DType::u8).to_f32(), InvalidArgument);
}

TEST(Tensor, ShapesAndAxes) {
  const Tensor t({2, 3, 4});
  EXPECT_EQ(t.rank(), 3);
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.nbytes(), 96u);
  EXPECT_EQ(t.dim(-1), 4);
  EXPECT_EQ(t.dim(0), 2);
  EXPECT_THROW(t.dim(3), InvalidArgument);
  EXPECT_THROW(t.dim(-4), InvalidArgument);
  EXPECT_EQ(shape_string({2, 3}), "[2, 3]");
  EXPECT_EQ(shape_string({}), "[]");
  EXPECT_THROW(shape_numel({2, -1}), InvalidArgument);
  EXPECT_THROW(Tensor({-3}), InvalidArgument);
  const MatrixView view = Tensor::zeros({2, 3, 4}).matrix();
  EXPECT_EQ(view.rows, 2);
  EXPECT_EQ(view.cols, 12);
  EXPECT_EQ(view.row_stride, 12);
}

TEST(Tensor, ReshapeKeepsElementsOrThrows) {
  Tensor t = Tensor::from_floats(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  const void* data = t.raw_data();
  t.reshape({3, 2});
  EXPECT_EQ(t.shape(), (Shape{3, 2}));
  EXPECT_EQ(t.raw_data(), data);
  t.reshape({6});
  EXPECT_EQ(t.data<float>()[5], 6.0f);
  EXPECT_THROW(t.reshape({4, 2}), InvalidArgument);
  EXPECT_THROW(t.reshape({-6}), InvalidArgument);
  EXPECT_EQ(t.shape(), (Shape{6}));  // unchanged after a failed reshape
}

TEST(Tensor, TypedAccessChecksTheDtype) {
  Tensor floats({4});
  EXPECT_NO_THROW(floats.data<float>());
  EXPECT_THROW(floats.data<int32_t>(), InvalidArgument);
  EXPECT_THROW(floats.data<uint8_t>(), InvalidArgument);
  const Tensor ints = Tensor::from_ints(std::vector<int32_t>{1, 2}, {2});
  EXPECT_THROW(ints.data<float>(), InvalidArgument);
  EXPECT_EQ(ints.data<int32_t>()[1], 2);
  // 16-bit storage reads as raw uint16_t for both f16 and bf16.
  const Tensor halves({3}, DType::f16);
  const Tensor brains({3}, DType::bf16);
  EXPECT_NO_THROW(halves.data<uint16_t>());
  EXPECT_NO_THROW(brains.data<uint16_t>());
  EXPECT_THROW(halves.data<float>(), InvalidArgument);
}

TEST(Tensor, FactoriesValidateSizes) {
  EXPECT_THROW(Tensor::from_floats(std::vector<float>{1, 2, 3}, {2, 2}), InvalidArgument);
  EXPECT_THROW(Tensor::from_ints(std::vector<int32_t>{1}, {2}), InvalidArgument);
  const Tensor zeros = Tensor::zeros({3, 5}, DType::i32);
  for (int64_t i = 0; i < 15; ++i) EXPECT_EQ(zeros.data<int32_t>()[i], 0);
}

TEST(Tensor, CheckShapeNamesTheArgument) {
  const Tensor t({2, 3});
  EXPECT_NO_THROW(check_shape(t, {2, 3}, "weight"));
  try {
    check_shape(t, {3, 2}, "my_weight");
    FAIL() << "shape mismatch accepted";
  } catch (const InvalidArgument& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("my_weight"), std::string::npos) << message;
    EXPECT_NE(message.find("[3, 2]"), std::string::npos) << message;
    EXPECT_NE(message.find("[2, 3]"), std::string::npos) << message;
  }
  EXPECT_THROW(check_shape(t, {2, 3}, "w", DType::i32), InvalidArgument);
  EXPECT_THROW(check_shape(Tensor(), {2, 3}, "w"), InvalidArgument);
}

// Reference decoders written from the IEEE formats, independent of the bit tricks in dtype.cpp.
double f16_reference(uint16_t bits) {
  const int sign = (bits >> 15) ? -1 : 1;
  const int exponent = (bits >> 10) & 0x1f;
  const int mantissa = bits & 0x3ff;
  if (exponent == 0) return sign * std::ldexp(mantissa / 1024.0, -14);
  if (exponent == 31) return mantissa ? std::numeric_limits<double>::quiet_NaN() : sign * INFINITY;
  return sign * std::ldexp(1.0 + mantissa / 1024.0, exponent - 15);
}

double bf16_reference(uint16_t bits) {
  const int sign = (bits >> 15) ? -1 : 1;
  const int exponent = (bits >> 7) & 0xff;
  const int mantissa = bits & 0x7f;
  if (exponent == 0) return sign * std::ldexp(mantissa / 128.0, -126);
  if (exponent == 255) return mantissa ? std::numeric_limits<double>::quiet_NaN() : sign * INFINITY;
  return sign * std::ldexp(1.0 + mantissa / 128.0, exponent - 127);
}

// Decoding every 16-bit pattern matches the formula (sign of zeros included); encoding the result returns the
// same pattern for every non-NaN value; NaN stays NaN.
template <class Decode, class Encode, class Reference>
void check_exhaustive_round_trip(Decode decode, Encode encode, Reference reference, const char* name) {
  int failures = 0;
  for (uint32_t pattern = 0; pattern <= 0xffff && failures < 5; ++pattern) {
    const auto bits = static_cast<uint16_t>(pattern);
    const float value = decode(bits);
    const double expected = reference(bits);
    if (std::isnan(expected)) {
      if (!std::isnan(value) || !std::isnan(decode(encode(value)))) {
        ADD_FAILURE() << name << " NaN pattern " << std::hex << pattern;
        ++failures;
      }
      continue;
    }
    if (static_cast<double>(value) != expected || std::signbit(value) != std::signbit(expected)) {
      ADD_FAILURE() << name << " decode " << std::hex << pattern << " gave " << value << " expected " << expected;
      ++failures;
    }
    if (encode(value) != bits) {
      ADD_FAILURE() << name << " round trip " << std::hex << pattern << " -> " << encode(value);
      ++failures;
    }
  }
}

TEST(DType, F16ExhaustiveRoundTrip) { check_exhaustive_round_trip(f16_to_f32, f32_to_f16, f16_reference, "f16"); }

TEST(DType, Bf16ExhaustiveRoundTrip) { check_exhaustive_round_trip(bf16_to_f32, f32_to_bf16, bf16_reference, "bf16"); }

// Round to nearest, ties to even: for every pair of adjacent finite positive 16-bit values (a, b), the exact
// midpoint goes to the one with an even mantissa, and the f32 values just below / above it go to a / b.
template <class Decode, class Encode>
void check_rounding(Decode decode, Encode encode, uint16_t largest_finite, const char* name) {
  int failures = 0;
  for (uint16_t low = 0; low < largest_finite && failures < 5; ++low) {
    const auto high = static_cast<uint16_t>(low + 1);
    const double midpoint = (static_cast<double>(decode(low)) + decode(high)) / 2.0;
    const auto mid = static_cast<float>(midpoint);
    ASSERT_EQ(static_cast<double>(mid), midpoint) << name << ": midpoint not exact in f32";
    const uint16_t even = (low & 1) == 0 ? low : high;
    const uint16_t got_mid = encode(mid);
    const uint16_t got_below = encode(std::nextafter(mid, 0.0f));
    const uint16_t got_above = encode(std::nextafter(mid, INFINITY));
    if (got_mid != even || got_below != low || got_above != high) {
      ADD_FAILURE() << name << " between " << std::hex << low << " and " << high << ": mid " << got_mid << " below "
                    << got_below << " above " << got_above;
      ++failures;
    }
    // Negative values mirror.
    if (encode(-mid) != (even | 0x8000)) {
      ADD_FAILURE() << name << " negative midpoint after " << std::hex << low;
      ++failures;
    }
  }
}

TEST(DType, F16RoundsToNearestEven) {
  check_rounding(f16_to_f32, f32_to_f16, 0x7bff, "f16");
  // Beyond the largest finite value 65504: up to the midpoint with infinity (65520) rounds down, from it up.
  EXPECT_EQ(f32_to_f16(65519.99f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);
  EXPECT_EQ(f32_to_f16(-1e10f), 0xfc00);
  EXPECT_EQ(f32_to_f16(1e-10f), 0x0000);  // below half the smallest subnormal
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(NAN))));
}

TEST(DType, Bf16RoundsToNearestEven) {
  check_rounding(bf16_to_f32, f32_to_bf16, 0x7f7f, "bf16");
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // above bf16's largest: infinity
  EXPECT_EQ(f32_to_bf16(INFINITY), 0x7f80);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(DType, SizesAndNames) {
  EXPECT_EQ(dtype_size(DType::f32), 4u);
  EXPECT_EQ(dtype_size(DType::f16), 2u);
  EXPECT_EQ(dtype_size(DType::bf16), 2u);
  EXPECT_EQ(dtype_size(DType::i32), 4u);
  EXPECT_EQ(dtype_size(DType::u8), 1u);
  EXPECT_EQ(dtype_name(DType::bf16), "bf16");
  EXPECT_EQ(dtype_name(DType::i32), "i32");
}

}  // namespace
}  // namespace jagged
