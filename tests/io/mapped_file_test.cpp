#include "io/mapped_file.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "io/model_writers.h"
#include "testing/smaps.h"

namespace jagged::io {
namespace {

using testing::Bytes;

Bytes float_bytes(std::initializer_list<float> values, size_t leading_pad) {
  Bytes bytes(leading_pad);
  for (float value : values) testing::append_pod(bytes, value);
  return bytes;
}

TEST(MappedFile, MapsAWholeFile) {
  const auto path = testing::scratch_dir("map") / "data.bin";
  const Bytes content = float_bytes({1.0f, 2.0f, 3.0f}, 0);
  testing::write_file(path, content);
  const auto file = MappedFile::open(path);
  ASSERT_EQ(file->size(), content.size());
  EXPECT_EQ(std::memcmp(file->bytes().data(), content.data(), content.size()), 0);
  EXPECT_EQ(file->path(), path);
}

TEST(MappedFile, EmptyFileMapsToAnEmptySpan) {
  const auto path = testing::scratch_dir("empty") / "empty.bin";
  testing::write_file(path, {});
  const auto file = MappedFile::open(path);
  EXPECT_EQ(file->size(), 0u);
  EXPECT_TRUE(file->bytes().empty());
}

TEST(MappedFile, MissingFileAndDirectoryGiveFileErrorsNamingThePath) {
  const auto dir = testing::scratch_dir("missing");
  try {
    MappedFile::open(dir / "nope.bin");
    FAIL() << "expected FileError";
  } catch (const FileError& error) {
    EXPECT_NE(std::string(error.what()).find("nope.bin"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("cannot open"), std::string::npos) << error.what();
  }
  try {
    MappedFile::open(dir);
    FAIL() << "expected FileError";
  } catch (const FileError& error) {
    EXPECT_NE(std::string(error.what()).find("not a regular file"), std::string::npos) << error.what();
  }
}

TEST(MappedFile, FromBytesCopiesTheBuffer) {
  Bytes content = float_bytes({4.0f}, 3);
  const auto file = MappedFile::from_bytes(content, "in-memory");
  content[3] = std::byte{0x7f};
  ASSERT_EQ(file->size(), 7u);
  EXPECT_NE(file->bytes()[3], std::byte{0x7f});
  EXPECT_EQ(file->path(), "in-memory");
}

TEST(F32TensorFromFile, BorrowsAlignedF32AndCopiesMisalignedF32) {
  const auto path = testing::scratch_dir("borrow") / "data.bin";
  testing::write_file(path, float_bytes({1.5f, -2.0f, 3.25f, 0.0f}, 0));
  const auto file = MappedFile::open(path);  // page aligned
  const Tensor aligned = f32_tensor_from_file(file, 4, {3}, DType::f32);
  EXPECT_EQ(aligned.raw_data(), file->bytes().data() + 4);  // no copy
  EXPECT_EQ(aligned.data<float>()[0], -2.0f);

  const auto odd = MappedFile::from_bytes(float_bytes({1.5f, -2.0f, 3.25f}, 1), "odd");
  ASSERT_NE(reinterpret_cast<uintptr_t>(odd->bytes().data() + 1) % alignof(float), 0u);
  const Tensor copied = f32_tensor_from_file(odd, 1, {3}, DType::f32);
  EXPECT_NE(copied.raw_data(), odd->bytes().data() + 1);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(copied.raw_data()) % alignof(float), 0u);
  EXPECT_EQ(copied.data<float>()[0], 1.5f);
  EXPECT_EQ(copied.data<float>()[2], 3.25f);
}

TEST(F32TensorFromFile, ConvertsF16AndBf16Exactly) {
  // Values exactly representable in both: conversion must be exact, including a subnormal f16 and the f16 max.
  const std::vector<float> values = {1.0f, -2.5f, 0.0f, 65504.0f, std::ldexp(1.0f, -24), -0.125f};
  for (const auto storage : {testing::Storage::f16, testing::Storage::bf16}) {
    Bytes bytes(1);  // misaligned on purpose
    const Bytes encoded = testing::encode(values.data(), static_cast<int64_t>(values.size()), storage);
    bytes.insert(bytes.end(), encoded.begin(), encoded.end());
    const auto file = MappedFile::from_bytes(bytes, "half");
    const Tensor tensor = f32_tensor_from_file(file, 1, {2, 3}, storage == testing::Storage::f16 ? DType::f16 : DType::bf16);
    ASSERT_EQ(tensor.shape(), (Shape{2, 3}));
    for (size_t i = 0; i < values.size(); ++i) {
      const float expected = storage == testing::Storage::f16 ? values[i] : bf16_to_f32(f32_to_bf16(values[i]));
      EXPECT_EQ(tensor.data<float>()[i], expected) << i;
    }
  }
}

TEST(F32TensorFromFile, ConvertsEveryF16AndBf16BitPatternLikeTheCoreConversions) {
  Bytes bytes(1);  // misaligned on purpose
  for (uint32_t bits = 0; bits < 65536; ++bits) testing::append_pod(bytes, static_cast<uint16_t>(bits));
  const auto file = MappedFile::from_bytes(bytes, "all_bits");
  for (const DType stored : {DType::f16, DType::bf16}) {
    const Tensor tensor = f32_tensor_from_file(file, 1, {65536}, stored);
    for (uint32_t bits = 0; bits < 65536; ++bits) {
      const float want = stored == DType::f16 ? f16_to_f32(static_cast<uint16_t>(bits))
                                              : bf16_to_f32(static_cast<uint16_t>(bits));
      const float got = tensor.data<float>()[bits];
      ASSERT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(want))
          << dtype_name(stored) << " bits 0x" << std::hex << bits;
    }
  }
}

// Resident KiB of the mapping that contains `address`, -1 when not found.
int64_t resident_kib_of_mapping(const void* address) {
  const std::string rss = testing::smaps_field(address, "Rss:");
  return rss.empty() ? -1 : std::stoll(rss);
}

// Weights resident once: a borrowed f32 tensor's pages leave the process's memory once released, and its
// values come back from the file; a tensor in a heap buffer is left alone.
TEST(F32TensorFromFile, ReleasedFilePagesLeaveMemoryAndReadBack) {
  std::vector<float> values(16384);  // 64 KiB: 16 pages
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) * 0.5f - 7.0f;
  Bytes bytes;
  for (const float value : values) testing::append_pod(bytes, value);
  const auto path = testing::scratch_dir("release") / "data.bin";
  testing::write_file(path, bytes);
  const auto file = MappedFile::open(path);
  const Tensor tensor = f32_tensor_from_file(file, 0, {128, 128}, DType::f32);
  ASSERT_EQ(tensor.raw_data(), file->bytes().data());
  float sum = 0.0f;
  for (int64_t i = 0; i < tensor.numel(); ++i) sum += tensor.data<float>()[i];
  EXPECT_GE(resident_kib_of_mapping(tensor.raw_data()), 64);
  tensor.release_file_pages();
  EXPECT_EQ(resident_kib_of_mapping(tensor.raw_data()), 0);
  EXPECT_EQ(std::memcmp(tensor.raw_data(), values.data(), bytes.size()), 0);
  EXPECT_NE(sum, 0.0f);

  const auto heap = MappedFile::from_bytes(bytes, "heap");
  const Tensor in_heap = f32_tensor_from_file(heap, 0, {128, 128}, DType::f32);
  in_heap.release_file_pages();  // not file-backed: must not drop (zero) the heap copy
  EXPECT_EQ(std::memcmp(in_heap.raw_data(), values.data(), bytes.size()), 0);
}

TEST(F32TensorFromFile, RejectsNonFloatStorage) {
  const auto file = MappedFile::from_bytes(float_bytes({1.0f}, 0), "ints");
  EXPECT_THROW(f32_tensor_from_file(file, 0, {1}, DType::i32), InvalidArgument);
}

}  // namespace
}  // namespace jagged::io
