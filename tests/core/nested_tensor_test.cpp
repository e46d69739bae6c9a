#include "jagged/nested_tensor.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "testing/ragged.h"

namespace jagged {
namespace {

// Sequence i has length lengths[i]; token t of sequence i holds the features 100 i + 10 t + f.
Tensor sequence_values(int64_t seq, int64_t length, int64_t features) {
  std::vector<float> values;
  for (int64_t t = 0; t < length; ++t) {
    for (int64_t f = 0; f < features; ++f) values.push_back(static_cast<float>(100 * seq + 10 * t + f));
  }
  return Tensor::from_floats(values, {length, features});
}

TEST(NestedTensor, FromSequencesPacksInOrder) {
  std::vector<Tensor> sequences;
  const std::vector<int64_t> lengths = {2, 0, 3, 1};
  for (size_t i = 0; i < lengths.size(); ++i) sequences.push_back(sequence_values(i, lengths[i], 4));
  const NestedTensor nested = NestedTensor::from_sequences(sequences);
  EXPECT_EQ(nested.num_seqs(), 4);
  EXPECT_EQ(nested.num_tokens(), 6);
  EXPECT_EQ(nested.max_seqlen(), 3);
  EXPECT_EQ(nested.seqlens(), lengths);
  EXPECT_EQ(nested.inner_shape(), (Shape{4}));
  EXPECT_EQ(std::vector<int32_t>(nested.cu_seqlens().begin(), nested.cu_seqlens().end()),
            (std::vector<int32_t>{0, 2, 2, 5, 6}));
  EXPECT_EQ(nested.values().shape(), (Shape{6, 4}));
  const float* values = nested.values().data<float>();
  EXPECT_EQ(values[0 * 4 + 1], 1.0f);    // seq 0, token 0, feature 1
  EXPECT_EQ(values[2 * 4 + 0], 200.0f);  // seq 2 starts at row 2 (seq 1 is empty)
  EXPECT_EQ(values[4 * 4 + 3], 223.0f);  // seq 2, token 2, feature 3
  EXPECT_EQ(values[5 * 4 + 2], 302.0f);  // seq 3, token 0
  for (size_t i = 0; i < lengths.size(); ++i) EXPECT_EQ(nested.seqlen(static_cast<int64_t>(i)), lengths[i]);
}

TEST(NestedTensor, FromLengthsSizesIncludingEmptySequences) {
  const std::vector<int64_t> lengths = {0, 0, 5, 0};
  const NestedTensor nested = NestedTensor::from_lengths(lengths, {2, 3}, DType::i32);
  EXPECT_EQ(nested.num_seqs(), 4);
  EXPECT_EQ(nested.num_tokens(), 5);
  EXPECT_EQ(nested.max_seqlen(), 5);
  EXPECT_EQ(nested.values().shape(), (Shape{5, 2, 3}));
  EXPECT_EQ(nested.dtype(), DType::i32);
  EXPECT_EQ(nested.sequence(1).shape, (Shape{0, 2, 3}));
  const NestedTensor none = NestedTensor::from_lengths(std::vector<int64_t>{}, {8});
  EXPECT_EQ(none.num_seqs(), 0);
  EXPECT_EQ(none.num_tokens(), 0);
  EXPECT_EQ(none.max_seqlen(), 0);
}

TEST(NestedTensor, SequenceViewsShareStorage) {
  NestedTensor nested = NestedTensor::from_lengths(std::vector<int64_t>{3, 2}, {4});
  for (int64_t i = 0; i < 20; ++i) nested.values().data<float>()[i] = static_cast<float>(i);
  const SequenceView second = nested.sequence(1);
  EXPECT_EQ(second.shape, (Shape{2, 4}));
  EXPECT_EQ(second.dtype, DType::f32);
  EXPECT_EQ(second.as<float>(), nested.values().data<float>() + 3 * 4);  // no copy: a pointer into values
  second.as<float>()[0] = -1.0f;
  EXPECT_EQ(nested.values().data<float>()[12], -1.0f);
  EXPECT_THROW(nested.sequence(2), InvalidArgument);
  EXPECT_THROW(nested.sequence(-1), InvalidArgument);
  EXPECT_THROW(nested.seqlen(2), InvalidArgument);
}

TEST(NestedTensor, ToPaddedValuesAndMask) {
  std::vector<Tensor> sequences;
  const std::vector<int64_t> lengths = {2, 0, 3};
  for (size_t i = 0; i < lengths.size(); ++i) sequences.push_back(sequence_values(i, lengths[i], 2));
  const NestedTensor nested = NestedTensor::from_sequences(sequences);
  const PaddedTensor padded = nested.to_padded(-7.0);
  EXPECT_EQ(padded.values.shape(), (Shape{3, 3, 2}));
  EXPECT_EQ(padded.mask.shape(), (Shape{3, 3}));
  EXPECT_EQ(padded.mask.dtype(), DType::u8);
  EXPECT_EQ(padded.lengths, lengths);
  const float* values = padded.values.data<float>();
  const uint8_t* mask = padded.mask.data<uint8_t>();
  for (int64_t seq = 0; seq < 3; ++seq) {
    for (int64_t t = 0; t < 3; ++t) {
      const bool real = t < lengths[seq];
      EXPECT_EQ(mask[seq * 3 + t], real ? 1 : 0) << seq << "," << t;
      for (int64_t f = 0; f < 2; ++f) {
        const float expected = real ? static_cast<float>(100 * seq + 10 * t + f) : -7.0f;
        EXPECT_EQ(values[(seq * 3 + t) * 2 + f], expected) << seq << "," << t << "," << f;
      }
    }
  }
  // i32 values pad too; other dtypes are refused.
  NestedTensor ids = NestedTensor::from_lengths(std::vector<int64_t>{1, 2}, {}, DType::i32);
  for (int i = 0; i < 3; ++i) ids.values().data<int32_t>()[i] = i + 1;
  const PaddedTensor padded_ids = ids.to_padded(0);
  EXPECT_EQ(std::vector<int32_t>(padded_ids.values.data<int32_t>(), padded_ids.values.data<int32_t>() + 4),
            (std::vector<int32_t>{1, 0, 2, 3}));
  const NestedTensor halves = NestedTensor::from_lengths(std::vector<int64_t>{1}, {2}, DType::f16);
  EXPECT_THROW(halves.to_padded(), InvalidArgument);
}

TEST(NestedTensor, FromPaddedRoundTrip) {
  for (const auto& length_case : testing::ragged_length_cases()) {
    NestedTensor nested = NestedTensor::from_lengths(length_case.lengths, {3});
    const Tensor random = testing::random_tensor({nested.num_tokens(), 3}, 5);
    if (random.nbytes() > 0) std::memcpy(nested.values().raw_data(), random.raw_data(), random.nbytes());
    const PaddedTensor padded = nested.to_padded();
    const NestedTensor back = NestedTensor::from_padded(padded.values, padded.lengths);
    EXPECT_EQ(std::vector<int32_t>(back.cu_seqlens().begin(), back.cu_seqlens().end()),
              std::vector<int32_t>(nested.cu_seqlens().begin(), nested.cu_seqlens().end()))
        << length_case.name;
    ASSERT_EQ(back.values().shape(), nested.values().shape()) << length_case.name;
    EXPECT_EQ(std::memcmp(back.values().raw_data(), nested.values().raw_data(), nested.values().nbytes()), 0)
        << length_case.name;
  }
  // Truncation: keeping fewer rows than were padded.
  const Tensor padded = testing::random_tensor({2, 4, 1}, 6);
  const NestedTensor truncated = NestedTensor::from_padded(padded, std::vector<int64_t>{1, 3});
  EXPECT_EQ(truncated.values().data<float>()[0], padded.data<float>()[0]);
  EXPECT_EQ(truncated.values().data<float>()[1], padded.data<float>()[4]);
  EXPECT_EQ(truncated.values().data<float>()[3], padded.data<float>()[6]);
}

TEST(NestedTensor, CloneIsDeep) {
  NestedTensor nested = NestedTensor::from_lengths(std::vector<int64_t>{2, 1}, {2});
  std::fill_n(nested.values().data<float>(), 6, 1.0f);
  const NestedTensor copy = nested.clone();
  nested.values().data<float>()[0] = 5.0f;
  EXPECT_EQ(copy.values().data<float>()[0], 1.0f);
  EXPECT_EQ(copy.seqlens(), nested.seqlens());
  EXPECT_EQ(copy.max_seqlen(), 2);
}

TEST(NestedTensor, RejectsBadOffsets) {
  const auto make = [](std::vector<int32_t> cu_seqlens, int64_t rows) {
    return NestedTensor(Tensor({rows, 2}), std::move(cu_seqlens));
  };
  EXPECT_NO_THROW(make({0, 2, 2, 5}, 5));
  EXPECT_THROW(make({0, 3, 2, 5}, 5), InvalidArgument);  // non-monotonic
  EXPECT_THROW(make({0, 2, 4}, 5), InvalidArgument);     // last offset != num_tokens
  EXPECT_THROW(make({0, 2, 6}, 5), InvalidArgument);
  EXPECT_THROW(make({1, 2, 5}, 5), InvalidArgument);  // does not start at 0
  EXPECT_THROW(make({}, 0), InvalidArgument);         // no offsets at all
  EXPECT_THROW(NestedTensor(Tensor(), {0}), InvalidArgument);
  try {
    make({0, 3, 2, 5}, 5);
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("cu_seqlens[2] = 2"), std::string::npos) << error.what();
  }
  EXPECT_THROW(validate_cu_seqlens(std::vector<int32_t>{0, 4}, 3), InvalidArgument);
  EXPECT_EQ(validate_cu_seqlens(std::vector<int32_t>{0, 4, 4, 10}, 10), 6);
}

TEST(NestedTensor, RejectsBadLengthsAndSequences) {
  EXPECT_THROW(NestedTensor::from_lengths(std::vector<int64_t>{3, -1}, {2}), InvalidArgument);
  EXPECT_THROW(cu_seqlens_from_lengths(std::vector<int64_t>{-5}), InvalidArgument);
  EXPECT_THROW(cu_seqlens_from_lengths(std::vector<int64_t>{int64_t{1} << 31}), InvalidArgument);  // int32 overflow
  EXPECT_EQ(cu_seqlens_from_lengths(std::vector<int64_t>{2, 0, 3}), (std::vector<int32_t>{0, 2, 2, 5}));

  EXPECT_THROW(NestedTensor::from_sequences(std::vector<Tensor>{}), InvalidArgument);  // empty list
  std::vector<Tensor> mismatched;
  mismatched.push_back(Tensor({2, 4}));
  mismatched.push_back(Tensor({3, 5}));
  EXPECT_THROW(NestedTensor::from_sequences(mismatched), InvalidArgument);
  std::vector<Tensor> mixed_types;
  mixed_types.push_back(Tensor({2, 4}));
  mixed_types.push_back(Tensor({2, 4}, DType::i32));
  EXPECT_THROW(NestedTensor::from_sequences(mixed_types), InvalidArgument);
  std::vector<Tensor> scalar;
  scalar.push_back(Tensor(Shape{}));
  EXPECT_THROW(NestedTensor::from_sequences(scalar), InvalidArgument);

  const Tensor padded({2, 3, 4});
  EXPECT_THROW(NestedTensor::from_padded(padded, std::vector<int64_t>{1}), InvalidArgument);     // count
  EXPECT_THROW(NestedTensor::from_padded(padded, std::vector<int64_t>{1, 4}), InvalidArgument);  // > max_seqlen
  EXPECT_THROW(NestedTensor::from_padded(padded, std::vector<int64_t>{1, -1}), InvalidArgument);
  EXPECT_THROW(NestedTensor::from_padded(Tensor({6}), std::vector<int64_t>{1}), InvalidArgument);  // rank < 2
}

}  // namespace
}  // namespace jagged
