#include "io/gguf.h"

#include <gtest/gtest.h>

#include <limits>

#include "io/model_writers.h"
#include "jagged/memory.h"

namespace jagged::io {
namespace {

using testing::Bytes;
using testing::GgufWriter;
using testing::expect_file_error;

GgufFile parse(const Bytes& bytes, const std::string& name = "test.gguf") {
  return GgufFile::parse(MappedFile::from_bytes(bytes, name));
}

// A file with every metadata type and one tensor of each supported dtype.
GgufWriter full_writer() {
  GgufWriter writer;
  writer.kv("u8", testing::kU8, uint8_t{200});
  writer.kv("i8", testing::kI8, int8_t{-100});
  writer.kv("u16", testing::kU16, uint16_t{60000});
  writer.kv("i16", testing::kI16, int16_t{-30000});
  writer.kv("u32", testing::kU32, uint32_t{4000000000u});
  writer.kv("i32", testing::kI32, int32_t{-2000000000});
  writer.kv("u64", testing::kU64, uint64_t{1} << 40);
  writer.kv("i64", testing::kI64, int64_t{-1} << 40);
  writer.kv("f32", testing::kF32, 0.5f);
  writer.kv("f64", testing::kF64, 0.25);
  writer.kv("bool", testing::kBool, uint8_t{1});
  writer.kv_string("str", "hello");
  writer.kv_strings("strs", {"a", "", "ccc"});
  writer.kv_i32s("ints", {3, -4, 5});
  writer.tensor("w32", testing::random_tensor({3, 5}, 1));
  writer.tensor("w16", testing::random_tensor({7}, 2), testing::Storage::f16);
  writer.tensor("wbf", testing::random_tensor({2, 3, 2}, 3), testing::Storage::bf16);
  return writer;
}

TEST(Gguf, ParsesEveryMetadataType) {
  const GgufFile gguf = parse(full_writer().bytes());
  EXPECT_EQ(gguf.version(), 3u);
  EXPECT_EQ(gguf.get("u8").as_int("u8"), 200);
  EXPECT_EQ(gguf.get("i8").as_int("i8"), -100);
  EXPECT_EQ(gguf.get("u16").as_int("u16"), 60000);
  EXPECT_EQ(gguf.get("i16").as_int("i16"), -30000);
  EXPECT_EQ(gguf.get("u32").as_int("u32"), 4000000000);
  EXPECT_EQ(gguf.get("i32").as_int("i32"), -2000000000);
  EXPECT_EQ(gguf.get("u64").as_int("u64"), int64_t{1} << 40);
  EXPECT_EQ(gguf.get("i64").as_int("i64"), -(int64_t{1} << 40));
  EXPECT_EQ(gguf.get("f32").as_float("f32"), 0.5);
  EXPECT_EQ(gguf.get("f64").as_float("f64"), 0.25);
  EXPECT_EQ(gguf.get("u8").as_float("u8"), 200.0);  // integers read as floats too
  EXPECT_TRUE(gguf.get("bool").as_bool("bool"));
  EXPECT_EQ(gguf.get("str").as_string("str"), "hello");
  EXPECT_EQ(gguf.get("strs").as_strings("strs"), (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(gguf.get("ints").as_ints("ints"), (std::vector<int64_t>{3, -4, 5}));
  EXPECT_EQ(gguf.get("ints").as_floats("ints"), (std::vector<double>{3, -4, 5}));
  EXPECT_EQ(gguf.find("absent"), nullptr);
  expect_file_error([&] { gguf.get("absent"); }, {"test.gguf", "missing metadata key 'absent'"});
}

TEST(Gguf, TypedAccessorsRejectOtherTypesNamingTheKey) {
  const GgufFile gguf = parse(full_writer().bytes());
  expect_file_error([&] { gguf.get("str").as_int("str"); }, {"'str'", "is a string, expected an integer"});
  expect_file_error([&] { gguf.get("f32").as_int("f32"); }, {"'f32'", "expected an integer"});
  expect_file_error([&] { gguf.get("u8").as_string("u8"); }, {"'u8'", "expected a string"});
  expect_file_error([&] { gguf.get("ints").as_strings("ints"); }, {"ints", "expected a string"});
  expect_file_error([&] { gguf.get("strs").as_ints("strs"); }, {"strs", "expected an integer"});
  expect_file_error([&] { gguf.get("u8").as_bool("u8"); }, {"'u8'", "expected a bool"});
  expect_file_error([&] { gguf.get("str").as_strings("str"); }, {"'str'", "expected an array"});
  GgufWriter big;
  big.kv("huge", testing::kU64, std::numeric_limits<uint64_t>::max());
  const GgufFile with_big = parse(big.bytes());
  expect_file_error([&] { with_big.get("huge").as_int("huge"); }, {"'huge'", "too large"});
}

TEST(Gguf, TensorsComeInPyTorchOrderAndReadAsF32) {
  const GgufFile gguf = parse(full_writer().bytes());
  ASSERT_EQ(gguf.tensors().size(), 3u);
  const GgufTensorInfo* w32 = gguf.find_tensor("w32");
  ASSERT_NE(w32, nullptr);
  EXPECT_EQ(w32->shape, (Shape{3, 5}));
  EXPECT_EQ(w32->nbytes, 60u);
  EXPECT_EQ(gguf.find_tensor("nope"), nullptr);

  const Tensor expected32 = testing::random_tensor({3, 5}, 1);
  const Tensor read32 = gguf.read_f32(*w32);
  EXPECT_EQ(testing::max_abs_diff(read32.data<float>(), expected32.data<float>(), 15), 0.0);

  const Tensor expected16 = testing::random_tensor({7}, 2);
  const Tensor read16 = gguf.read_f32(*gguf.find_tensor("w16"));
  for (int i = 0; i < 7; ++i) EXPECT_EQ(read16.data<float>()[i], f16_to_f32(f32_to_f16(expected16.data<float>()[i])));

  const Tensor expected_bf = testing::random_tensor({2, 3, 2}, 3);
  const Tensor read_bf = gguf.read_f32(*gguf.find_tensor("wbf"));
  EXPECT_EQ(read_bf.shape(), (Shape{2, 3, 2}));
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(read_bf.data<float>()[i], bf16_to_f32(f32_to_bf16(expected_bf.data<float>()[i])));
  }
}

TEST(Gguf, BorrowsF32TensorsFromAMappedFile) {
  const auto path = testing::scratch_dir("borrow") / "model.gguf";
  testing::write_file(path, full_writer().bytes());
  const GgufFile gguf = GgufFile::open(path);
  EXPECT_EQ(gguf.path(), path);
  const GgufTensorInfo& info = *gguf.find_tensor("w32");
  const int64_t allocated_before = memory_stats().current_bytes;
  const Tensor tensor = gguf.read_f32(info);
  EXPECT_EQ(memory_stats().current_bytes, allocated_before);  // borrowed: the allocator saw nothing
  EXPECT_EQ(gguf.data_offset() % 32, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(tensor.raw_data()) % 32, 0u);  // page-aligned map + 32-aligned data
  const Tensor converted = gguf.read_f32(*gguf.find_tensor("w16"));
  EXPECT_GT(memory_stats().current_bytes, allocated_before);  // f16 is converted into an owned tensor
}

TEST(Gguf, HonoursGeneralAlignment) {
  GgufWriter writer;
  writer.alignment = 64;
  writer.kv_u32("general.alignment", 64);
  writer.tensor("a", testing::random_tensor({3}, 1));
  writer.tensor("b", testing::random_tensor({5}, 2));
  const GgufFile gguf = parse(writer.bytes());
  EXPECT_EQ(gguf.alignment(), 64u);
  EXPECT_EQ(gguf.data_offset() % 64, 0u);
  EXPECT_EQ(gguf.find_tensor("b")->offset, 64u);
  const Tensor b = gguf.read_f32(*gguf.find_tensor("b"));
  EXPECT_EQ(b.data<float>()[4], testing::random_tensor({5}, 2).data<float>()[4]);

  GgufWriter odd;
  odd.kv_u32("general.alignment", 24);
  expect_file_error([&] { parse(odd.bytes()); }, {"general.alignment 24", "power of two"});
  GgufWriter text;
  text.kv_string("general.alignment", "32");
  expect_file_error([&] { parse(text.bytes()); }, {"general.alignment", "expected an integer"});
}

TEST(Gguf, VocabOnlyFilesWithoutTensorsParse) {
  GgufWriter writer;
  writer.kv_strings("tokenizer.ggml.tokens", {"<s>", "</s>", "a"});
  const GgufFile gguf = parse(writer.bytes());
  EXPECT_TRUE(gguf.tensors().empty());
  EXPECT_EQ(gguf.get("tokenizer.ggml.tokens").as_strings("tokenizer.ggml.tokens").size(), 3u);
}

TEST(Gguf, AcceptsVersion2) {
  GgufWriter writer = full_writer();
  writer.version = 2;
  EXPECT_EQ(parse(writer.bytes()).version(), 2u);
}

TEST(Gguf, RejectsWrongMagicAndVersions) {
  Bytes bytes = full_writer().bytes();
  bytes[0] = std::byte{'X'};
  expect_file_error([&] { parse(bytes, "bad.gguf"); }, {"bad.gguf", "not a GGUF file"});
  expect_file_error([&] { parse(Bytes(2), "tiny.gguf"); }, {"tiny.gguf", "not a GGUF file"});
  GgufWriter v1 = full_writer();
  v1.version = 1;
  expect_file_error([&] { parse(v1.bytes(), "old.gguf"); }, {"old.gguf", "GGUF version 1 is not supported"});
  GgufWriter v4 = full_writer();
  v4.version = 4;
  expect_file_error([&] { parse(v4.bytes()); }, {"unsupported GGUF version 4 (expected 2 or 3)"});
  GgufWriter swapped = full_writer();
  swapped.version = 0x03000000;
  expect_file_error([&] { parse(swapped.bytes()); }, {"big-endian"});
}

TEST(Gguf, EveryTruncationIsAFileError) {
  const Bytes bytes = full_writer().bytes();
  for (size_t length = 0; length < bytes.size(); ++length) {
    const Bytes prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(length));
    try {
      parse(prefix, "cut.gguf");
      ADD_FAILURE() << "a " << length << "-byte prefix parsed";
    } catch (const FileError& error) {
      EXPECT_NE(std::string(error.what()).find("cut.gguf"), std::string::npos) << error.what();
    }
  }
}

TEST(Gguf, HugeCountsAreFileErrorsNotAllocations) {
  GgufWriter tensors = full_writer();
  tensors.tensor_count_override = uint64_t{1} << 60;
  expect_file_error([&] { parse(tensors.bytes()); }, {"1152921504606846976 tensors", "cannot fit"});
  GgufWriter kvs = full_writer();
  kvs.kv_count_override = std::numeric_limits<uint64_t>::max();
  expect_file_error([&] { parse(kvs.bytes()); }, {"metadata entries cannot fit"});

  GgufWriter array;
  Bytes payload;
  testing::append_pod(payload, uint32_t{testing::kU64});
  testing::append_pod(payload, uint64_t{1} << 60);
  array.kv_raw("big_array", testing::kArray, payload);
  expect_file_error([&] { parse(array.bytes()); }, {"'big_array'", "1152921504606846976 elements"});

  GgufWriter strings;
  Bytes string_payload;
  testing::append_pod(string_payload, uint32_t{testing::kString});
  testing::append_pod(string_payload, std::numeric_limits<uint64_t>::max() / 2);
  strings.kv_raw("big_strings", testing::kArray, string_payload);
  expect_file_error([&] { parse(strings.bytes()); }, {"'big_strings'", "elements"});

  GgufWriter long_string;
  Bytes text;
  testing::append_pod(text, std::numeric_limits<uint64_t>::max());
  long_string.kv_raw("long", testing::kString, text);
  expect_file_error([&] { parse(long_string.bytes()); }, {"truncated", "'long'"});
}

TEST(Gguf, RejectsMalformedMetadata) {
  GgufWriter nested;
  Bytes payload;
  testing::append_pod(payload, uint32_t{testing::kArray});
  testing::append_pod(payload, uint64_t{1});
  nested.kv_raw("nested", testing::kArray, payload);
  expect_file_error([&] { parse(nested.bytes()); }, {"'nested'", "arrays of arrays"});

  GgufWriter unknown;
  unknown.kv("weird", 13, uint32_t{0});
  expect_file_error([&] { parse(unknown.bytes()); }, {"'weird'", "unknown metadata value type 13"});

  GgufWriter bad_bool;
  bad_bool.kv("flag", testing::kBool, uint8_t{7});
  expect_file_error([&] { parse(bad_bool.bytes()); }, {"'flag'", "bool value 7"});

  GgufWriter duplicate;
  duplicate.kv_u32("key", 1);
  duplicate.kv_u32("key", 2);
  expect_file_error([&] { parse(duplicate.bytes()); }, {"duplicate metadata key 'key'"});
}

TEST(Gguf, RejectsMalformedTensorInfos) {
  const Tensor values = testing::random_tensor({4}, 1);
  {
    GgufWriter writer;
    writer.tensor("five_d", {1, 1, 1, 1, 4}, 0, testing::encode(values, testing::Storage::f32));
    expect_file_error([&] { parse(writer.bytes()); }, {"tensor 'five_d'", "rank 5"});
  }
  {
    GgufWriter writer;
    writer.tensor("strange", {4}, 77, testing::encode(values, testing::Storage::f32));
    expect_file_error([&] { parse(writer.bytes()); }, {"tensor 'strange'", "unknown tensor type type 77"});
  }
  {
    GgufWriter writer;
    writer.tensor("ragged_q", {2, 100}, 12, Bytes(144));  // Q4_K blocks hold 256 elements
    expect_file_error([&] { parse(writer.bytes()); }, {"ragged_q", "not a multiple of the Q4_K block size 256"});
  }
  {
    GgufWriter writer;
    writer.tensor("huge", {int64_t{1} << 40, int64_t{1} << 40}, 0, Bytes(16));
    expect_file_error([&] { parse(writer.bytes()); }, {"tensor 'huge'", "overflows"});
  }
  {
    GgufWriter writer;
    writer.tensor("a", values);
    writer.tensor("a", values);
    expect_file_error([&] { parse(writer.bytes()); }, {"duplicate tensor name 'a'"});
  }
}

TEST(Gguf, RejectsBadTensorOffsets) {
  const Tensor values = testing::random_tensor({16}, 1);
  {
    GgufWriter writer;
    writer.tensor("a", values);
    writer.tensor("misaligned", {16}, 0, testing::encode(values, testing::Storage::f32), 68);
    expect_file_error([&] { parse(writer.bytes(), "m.gguf"); },
                      {"m.gguf", "tensor 'misaligned'", "data offset 68 is not a multiple of the alignment 32"});
  }
  {
    GgufWriter writer;
    writer.tensor("a", values);
    writer.tensor("beyond", {16}, 0, testing::encode(values, testing::Storage::f32), 1 << 20);
    expect_file_error([&] { parse(writer.bytes()); }, {"tensor 'beyond'", "runs past its end"});
  }
  {
    GgufWriter writer;
    writer.tensor("a", values);
    writer.tensor("b", {16}, 0, testing::encode(values, testing::Storage::f32), 32);  // a spans [0, 64)
    expect_file_error([&] { parse(writer.bytes()); }, {"'a' [0, 64)", "'b' [32, 96)", "overlap"});
  }
  {
    Bytes bytes = [&] {
      GgufWriter writer;
      writer.tensor("a", values);
      return writer.bytes();
    }();
    ASSERT_GT(bytes.size(), 4u);
    bytes.erase(bytes.end() - 4, bytes.end());  // (resize trips GCC 12's stringop-overflow at -O1 under sanitizers)
    expect_file_error([&] { parse(bytes); }, {"tensor 'a'", "runs past its end", "truncated"});
  }
}

TEST(Gguf, BlockTensorsAreKeptOrWidenedOthersRejected) {
  GgufWriter writer;
  writer.tensor("blk.0.ffn_up.weight", {2, 256}, 12, Bytes(2 * 144));  // Q4_K (zero blocks)
  writer.tensor("blk.0.ffn_down.weight", {2, 256}, 10, Bytes(2 * 84));  // Q2_K: no kernel here
  writer.tensor("counts", {3}, 26, Bytes(12));                          // I32
  const GgufFile gguf = parse(writer.bytes(), "q.gguf");
  EXPECT_EQ(gguf.find_tensor("blk.0.ffn_up.weight")->nbytes, 288u);
  const Tensor kept = gguf.read_stored(*gguf.find_tensor("blk.0.ffn_up.weight"));
  EXPECT_EQ(kept.dtype(), DType::q4_k);
  EXPECT_EQ(kept.shape(), (Shape{2, 256}));
  EXPECT_EQ(kept.nbytes(), 288u);
  const Tensor widened = gguf.read_f32(*gguf.find_tensor("blk.0.ffn_up.weight"));
  EXPECT_EQ(widened.dtype(), DType::f32);
  EXPECT_EQ(widened.data<float>()[511], 0.0f);
  expect_file_error([&] { gguf.read_f32(*gguf.find_tensor("blk.0.ffn_down.weight")); },
                    {"q.gguf", "unsupported tensor type Q2_K in tensor blk.0.ffn_down.weight", "supported: F32"});
  expect_file_error([&] { gguf.read_f32(*gguf.find_tensor("counts")); }, {"unsupported tensor type I32 in tensor counts"});
  EXPECT_EQ(ggml_type_name(14), "Q6_K");
}

// Q8_0 (f16 d, 32 int8: w = d q) and Q4_0 (f16 d, 16 bytes: element i in the low nibble of byte i, element
// 16 + i in the high one; w = d (q - 8)) read as f32 exactly.
TEST(Gguf, Q8_0AndQ4_0TensorsDequantizeExactly) {
  Bytes q8 = {std::byte{0x00}, std::byte{0x38}};  // d = 0.5 (f16 0x3800)
  for (int i = 0; i < 32; ++i) q8.push_back(static_cast<std::byte>(static_cast<int8_t>(i * 8 - 128)));
  Bytes q4 = {std::byte{0x00}, std::byte{0xbc}};  // d = -1 (f16 0xbc00)
  for (int i = 0; i < 16; ++i) q4.push_back(static_cast<std::byte>(i | ((15 - i) << 4)));
  GgufWriter writer;
  writer.tensor("q8", {1, 32}, 8, q8);
  writer.tensor("q4", {1, 32}, 2, q4);
  const GgufFile gguf = parse(writer.bytes(), "blocks.gguf");
  const Tensor q8_values = gguf.read_f32(*gguf.find_tensor("q8"));
  const Tensor q4_values = gguf.read_f32(*gguf.find_tensor("q4"));
  ASSERT_EQ(q8_values.shape(), (Shape{1, 32}));
  for (int i = 0; i < 32; ++i) {
    EXPECT_EQ(q8_values.data<float>()[i], 0.5f * static_cast<float>(i * 8 - 128)) << i;
    const int q = i < 16 ? i : 15 - (i - 16);
    EXPECT_EQ(q4_values.data<float>()[i], -1.0f * static_cast<float>(q - 8)) << i;
  }
  EXPECT_EQ(ggml_type_name(30), "BF16");
  EXPECT_EQ(ggml_type_name(1000), "type 1000");
}

}  // namespace
}  // namespace jagged::io
