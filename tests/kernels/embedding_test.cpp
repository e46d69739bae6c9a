#include "kernels/embedding.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>

#include "jagged/nested_tensor.h"
#include "jagged/ops.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

Tensor random_ids(int64_t count, int32_t vocab_size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> id(0, vocab_size - 1);
  std::vector<int32_t> ids(static_cast<size_t>(count));
  for (auto& value : ids) value = id(rng);
  if (count > 1) {
    ids.front() = 0;  // both ends of the table
    ids.back() = vocab_size - 1;
  }
  return Tensor::from_ints(ids, {count});
}

TEST(Embedding, MatchesReferenceOnRaggedBatches) {
  const int32_t vocab_size = 97;
  for (const int64_t dim : {1, 5, 64, 576}) {
    const Tensor table = testing::random_tensor({vocab_size, dim}, 3);
    for (const auto& length_case : testing::ragged_length_cases()) {
      const int64_t num_tokens = NestedTensor::from_lengths(length_case.lengths, {1}).num_tokens();
      const Tensor ids = random_ids(num_tokens, vocab_size, 4);
      Tensor expected({num_tokens, dim});
      Tensor actual({num_tokens, dim});
      kernels::reference::embedding(ids.data<int32_t>(), num_tokens, table.data<float>(), dim, expected.data<float>());
      ops::embedding(ids, table, actual);
      // A lookup copies: bit-identical.
      EXPECT_EQ(std::memcmp(actual.data<float>(), expected.data<float>(), actual.nbytes()), 0)
          << length_case.name << " dim " << dim;
    }
  }
}

TEST(Embedding, RejectsOutOfRangeIdsNamingThem) {
  const Tensor table = testing::random_tensor({10, 4}, 1);
  Tensor out({3, 4});
  for (const int32_t bad_id : {10, -1, 1 << 30}) {
    const Tensor ids = Tensor::from_ints(std::vector<int32_t>{2, bad_id, 3}, {3});
    try {
      ops::embedding(ids, table, out);
      FAIL() << "id " << bad_id << " accepted";
    } catch (const InvalidArgument& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find(std::to_string(bad_id)), std::string::npos) << message;
      EXPECT_NE(message.find("position 1"), std::string::npos) << message;
      EXPECT_NE(message.find("vocab_size = 10"), std::string::npos) << message;
    }
  }
}

TEST(Embedding, RejectsBadShapesAndTypes) {
  const Tensor table = testing::random_tensor({10, 4}, 1);
  const Tensor ids = Tensor::from_ints(std::vector<int32_t>{1, 2, 3}, {3});
  Tensor out({3, 4});
  EXPECT_NO_THROW(ops::embedding(ids, table, out));
  Tensor wrong_out({3, 5});
  EXPECT_THROW(ops::embedding(ids, table, wrong_out), InvalidArgument);
  const Tensor float_ids = testing::random_tensor({3}, 2);
  EXPECT_THROW(ops::embedding(float_ids, table, out), InvalidArgument);
  const Tensor ids_2d = Tensor::from_ints(std::vector<int32_t>{1, 2, 3}, {3, 1});
  EXPECT_THROW(ops::embedding(ids_2d, table, out), InvalidArgument);
  EXPECT_THROW(ops::embedding(ids, Tensor::zeros({10, 4}, DType::i32), out), InvalidArgument);
  const Tensor table_1d = testing::random_tensor({40}, 3);
  EXPECT_THROW(ops::embedding(ids, table_1d, out), InvalidArgument);
}

// A packed table (a tied head, a quantized table): each looked-up row is the packed weight's row, unpacked exactly,
// for every storage type, a stack of parts of different types, and rows past a 48-row panel.
TEST(Embedding, FromAPackedTableEqualsTheLookupInItsUnpackedValues) {
  const int32_t vocab_size = 101;
  const int64_t dim = 96;
  const Tensor table = testing::random_tensor({vocab_size, dim}, 5);
  std::vector<ops::PackedWeight> tables;
  for (const char* type : {"f32", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1"}) {
    tables.emplace_back(table, ops::parse_weight_type(type));
  }
  std::vector<ops::PackedWeight> parts;
  parts.emplace_back(testing::random_tensor({50, dim}, 6), ops::WeightType::q8_0);
  parts.emplace_back(testing::random_tensor({vocab_size - 50, dim}, 7), ops::WeightType::q5_0);
  tables.push_back(ops::PackedWeight::stack(std::move(parts)));
  for (const ops::PackedWeight& packed : tables) {
    const Tensor unpacked = packed.unpack();
    for (const auto& length_case : testing::ragged_length_cases()) {
      const int64_t num_tokens = NestedTensor::from_lengths(length_case.lengths, {1}).num_tokens();
      const Tensor ids = random_ids(num_tokens, vocab_size, 8);
      Tensor expected({num_tokens, dim});
      Tensor actual({num_tokens, dim});
      ops::embedding(ids, unpacked, expected);
      ops::embedding(ids, packed, actual);
      EXPECT_EQ(std::memcmp(actual.data<float>(), expected.data<float>(), actual.nbytes()), 0)
          << ops::weight_type_name(packed.type()) << (packed.parts().empty() ? "" : " stack") << ", "
          << length_case.name;
    }
    Tensor out({2, dim});
    EXPECT_THROW(ops::embedding(Tensor::from_ints(std::vector<int32_t>{0, vocab_size}, {2}), packed, out),
                 InvalidArgument);
    std::vector<float> row(static_cast<size_t>(dim));
    EXPECT_THROW(packed.unpack_row(vocab_size, row.data()), InvalidArgument);
    EXPECT_THROW(packed.unpack_row(-1, row.data()), InvalidArgument);
  }
  Tensor out({1, dim});
  EXPECT_THROW(ops::embedding(Tensor::from_ints(std::vector<int32_t>{0}, {1}), ops::PackedWeight(), out),
               InvalidArgument);
}

}  // namespace
}  // namespace jagged
