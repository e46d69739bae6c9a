#include "io/safetensors.h"

#include <gtest/gtest.h>

#include "io/model_writers.h"
#include "jagged/memory.h"

namespace jagged::io {
namespace {

using testing::Bytes;
using testing::SafetensorsWriter;
using testing::expect_file_error;

SafetensorsFile parse(const Bytes& bytes, const std::string& name = "test.safetensors") {
  return SafetensorsFile::parse(MappedFile::from_bytes(bytes, name));
}

SafetensorsWriter three_dtypes() {
  SafetensorsWriter writer;
  writer.tensor("a.f32", testing::random_tensor({3, 4}, 1));
  writer.tensor("b.f16", testing::random_tensor({5}, 2), testing::Storage::f16);
  writer.tensor("c.bf16", testing::random_tensor({2, 2, 2}, 3), testing::Storage::bf16);
  return writer;
}

// A header entry for corruption tests.
std::string entry(const std::string& name, const std::string& dtype, const std::string& shape, uint64_t begin,
                  uint64_t end) {
  return concat("\"", name, "\":{\"dtype\":\"", dtype, "\",\"shape\":", shape, ",\"data_offsets\":[", begin, ",",
                end, "]}");
}

// {entries...} as one JSON object.
std::string object(std::initializer_list<std::string> entries) {
  std::string text = "{";
  for (const auto& item : entries) {
    if (text.size() > 1) text += ',';
    text += item;
  }
  text += '}';
  return text;
}

TEST(Safetensors, ParsesAndReadsF32F16Bf16) {
  const SafetensorsFile file = parse(three_dtypes().bytes());
  ASSERT_EQ(file.tensors().size(), 3u);
  EXPECT_EQ(file.metadata().at("format"), "pt");
  const SafetensorsTensorInfo* a = file.find_tensor("a.f32");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, "F32");
  EXPECT_EQ(a->shape, (Shape{3, 4}));
  EXPECT_EQ(file.find_tensor("zzz"), nullptr);
  const Tensor read_a = file.read_f32(*a);
  const Tensor want_a = testing::random_tensor({3, 4}, 1);
  EXPECT_EQ(testing::max_abs_diff(read_a.data<float>(), want_a.data<float>(), 12), 0.0);
  const Tensor read_b = file.read_f32(*file.find_tensor("b.f16"));
  const Tensor want_b = testing::random_tensor({5}, 2);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(read_b.data<float>()[i], f16_to_f32(f32_to_f16(want_b.data<float>()[i])));
  const Tensor read_c = file.read_f32(*file.find_tensor("c.bf16"));
  const Tensor want_c = testing::random_tensor({2, 2, 2}, 3);
  EXPECT_EQ(read_c.shape(), (Shape{2, 2, 2}));
  for (int i = 0; i < 8; ++i) EXPECT_EQ(read_c.data<float>()[i], bf16_to_f32(f32_to_bf16(want_c.data<float>()[i])));
}

TEST(Safetensors, BorrowsAlignedF32AndCopiesMisalignedF32) {
  const auto dir = testing::scratch_dir("align");
  SafetensorsWriter aligned = three_dtypes();
  testing::write_file(dir / "aligned.safetensors", aligned.bytes());
  const SafetensorsFile file = SafetensorsFile::open(dir / "aligned.safetensors");
  ASSERT_EQ(file.data_offset() % 8, 0u);
  const int64_t before = memory_stats().current_bytes;
  const Tensor borrowed = file.read_f32(*file.find_tensor("a.f32"));
  EXPECT_EQ(memory_stats().current_bytes, before);

  SafetensorsWriter odd = three_dtypes();
  odd.header_padding = 1;
  std::string header = odd.header().dump();
  if ((8 + header.size()) % 4 == 0) header += ' ';  // force a data section at an odd offset
  testing::write_file(dir / "odd.safetensors", odd.bytes_with_header(header));
  const SafetensorsFile odd_file = SafetensorsFile::open(dir / "odd.safetensors");
  ASSERT_NE(odd_file.data_offset() % 4, 0u);
  const Tensor copied = odd_file.read_f32(*odd_file.find_tensor("a.f32"));
  EXPECT_GT(memory_stats().current_bytes, before);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(copied.raw_data()) % alignof(float), 0u);
  EXPECT_EQ(testing::max_abs_diff(copied.data<float>(), borrowed.data<float>(), 12), 0.0);
}

TEST(Safetensors, EveryTruncationIsAFileError) {
  const Bytes bytes = three_dtypes().bytes();
  for (size_t length = 0; length < bytes.size(); ++length) {
    const Bytes prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(length));
    try {
      parse(prefix, "cut.safetensors");
      ADD_FAILURE() << "a " << length << "-byte prefix parsed";
    } catch (const FileError& error) {
      EXPECT_NE(std::string(error.what()).find("cut.safetensors"), std::string::npos) << error.what();
    }
  }
}

TEST(Safetensors, RejectsBadHeaders) {
  expect_file_error([&] { parse(Bytes(5), "short.safetensors"); }, {"short.safetensors", "truncated", "5 bytes"});
  Bytes past = three_dtypes().bytes();
  past[6] = std::byte{1};  // header length ~2^48
  expect_file_error([&] { parse(past, "past.safetensors"); }, {"past.safetensors", "header length", "past the end"});
  expect_file_error([&] { parse(testing::safetensors_raw("{\"a\": ", {})); }, {"does not parse"});
  expect_file_error([&] { parse(testing::safetensors_raw("[1, 2]", {})); }, {"not an object"});
  expect_file_error([&] { parse(testing::safetensors_raw("{\"__metadata__\": {\"k\": 3}}", {})); },
                    {"__metadata__ value of 'k'"});
  expect_file_error([&] { parse(testing::safetensors_raw("{\"t\": 3}", {})); }, {"tensor 't'", "not an object"});
  expect_file_error([&] { parse(testing::safetensors_raw("{\"t\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", Bytes(4))); },
                    {"tensor 't'", "dtype"});
  expect_file_error([&] { parse(testing::safetensors_raw(object({entry("t", "F32", "[-1]", 0, 4)}), Bytes(4))); },
                    {"tensor 't'", "non-integer extent"});
  expect_file_error([&] { parse(testing::safetensors_raw(object({entry("t", "F32", "[1.5]", 0, 4)}), Bytes(4))); },
                    {"tensor 't'", "non-integer extent"});
  expect_file_error(
      [&] { parse(testing::safetensors_raw(object({entry("t", "F32", "[4294967296, 4294967296, 4]", 0, 4)}), Bytes(4))); },
      {"tensor 't'", "overflows"});
  expect_file_error(
      [&] { parse(testing::safetensors_raw("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", Bytes(4))); },
      {"tensor 't'", "data_offsets must be"});
}

TEST(Safetensors, RejectsUnknownAndUnsupportedDtypes) {
  expect_file_error([&] { parse(testing::safetensors_raw(object({entry("w", "Q4", "[2]", 0, 2)}), Bytes(2)), "u.st"); },
                    {"u.st", "tensor 'w'", "unknown dtype Q4"});
  // Integer tensors (position_ids buffers) parse; reading one as f32 names the tensor and its dtype.
  const SafetensorsFile file =
      parse(testing::safetensors_raw(object({entry("embeddings.position_ids", "I64", "[1, 2]", 0, 16)}), Bytes(16)),
            "ids.safetensors");
  expect_file_error([&] { file.read_f32(*file.find_tensor("embeddings.position_ids")); },
                    {"ids.safetensors", "unsupported dtype I64 in tensor embeddings.position_ids"});
}

TEST(Safetensors, RejectsBadDataOffsets) {
  expect_file_error([&] { parse(testing::safetensors_raw(object({entry("t", "F32", "[4]", 0, 16)}), Bytes(12)), "o.st"); },
                    {"o.st", "tensor 't'", "[0, 16]", "past the end of the data section (12 bytes"});
  expect_file_error([&] { parse(testing::safetensors_raw(object({entry("t", "F32", "[0]", 8, 4)}), Bytes(12))); },
                    {"tensor 't'", "reversed"});
  expect_file_error([&] { parse(testing::safetensors_raw(object({entry("t", "F32", "[2]", 0, 12)}), Bytes(12))); },
                    {"tensor 't'", "hold 12 bytes", "needs 8"});
  expect_file_error([&] { parse(testing::safetensors_raw(object({entry("t", "BF16", "[3]", 0, 12)}), Bytes(12))); },
                    {"hold 12 bytes", "BF16 [3] needs 6"});
  expect_file_error(
      [&] {
        parse(testing::safetensors_raw(object({entry("a", "F32", "[3]", 0, 12), entry("b", "F32", "[2]", 8, 16)}),
                                       Bytes(16)));
      },
      {"'a' [0, 12)", "'b' [8, 16)", "overlap"});
  // Empty tensors may share an offset with anything.
  const SafetensorsFile ok = parse(testing::safetensors_raw(
      object({entry("a", "F32", "[2]", 0, 8), entry("empty", "F32", "[0, 3]", 4, 4)}), Bytes(8)));
  EXPECT_EQ(ok.read_f32(*ok.find_tensor("empty")).numel(), 0);
}

}  // namespace
}  // namespace jagged::io
