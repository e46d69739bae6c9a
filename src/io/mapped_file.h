// A read-only memory mapping of a whole file. Shared so that tensors borrowed from it keep it alive.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>

#include "jagged/dtype.h"
#include "jagged/tensor.h"

namespace jagged::io {

class MappedFile {
 public:
  // FileError when the file cannot be opened or mapped. An empty file maps to an empty span.
  static std::shared_ptr<MappedFile> open(const std::filesystem::path& path);
  // A copy of `bytes` in memory, reported as `name` in errors: lets the parsers (and fuzzers) run on buffers.
  static std::shared_ptr<MappedFile> from_bytes(std::span<const std::byte> bytes, std::filesystem::path name);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }
  bool mapped() const { return mapped_; }  // a read-only file mapping (not a heap copy)

 private:
  MappedFile() = default;
  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;  // munmap on destruction; otherwise data_ is an owned heap copy
};

// Element `count` f32/f16/bf16 values at `offset` of `file` as an f32 tensor of `shape`. f32 data is borrowed
// from the mapping (no copy) when its address is 4-byte aligned, else copied; f16/bf16 are converted.
// The caller has checked that the range lies inside the file. Other dtypes: InvalidArgument.
Tensor f32_tensor_from_file(const std::shared_ptr<const MappedFile>& file, uint64_t offset, Shape shape,
                            DType stored);
// The values as the file stores them (f32, f16 or bf16), borrowed from the mapping when aligned, else copied:
// weights that the model packs are read once, by the packing, and never widened as a whole.
Tensor stored_tensor_from_file(const std::shared_ptr<const MappedFile>& file, uint64_t offset, Shape shape,
                               DType stored);

}  // namespace jagged::io
