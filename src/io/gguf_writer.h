// GGUF v3 writer: metadata key/values and tensors, laid out as llama.cpp's gguf.cpp reads them (header, metadata,
// tensor infos, then the data section at the alignment, each tensor at a multiple of the alignment). It writes what
// it is given without judging it, so the reader tests also use it to build corrupt files (the overrides below).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "jagged/tensor.h"

namespace jagged::io {

// GGUF metadata value types.
enum GgufValueType : uint32_t {
  kGgufU8 = 0, kGgufI8 = 1, kGgufU16 = 2, kGgufI16 = 3, kGgufU32 = 4, kGgufI32 = 5, kGgufF32 = 6, kGgufBool = 7,
  kGgufString = 8, kGgufArray = 9, kGgufU64 = 10, kGgufI64 = 11, kGgufF64 = 12,
};
// ggml tensor types the writer's helpers produce.
constexpr uint32_t kGgmlF32 = 0, kGgmlF16 = 1, kGgmlBF16 = 30;

class GgufWriter {
 public:
  using Bytes = std::vector<std::byte>;

  uint32_t version = 3;
  uint64_t alignment = 32;  // the layout only: write general.alignment yourself when it is not 32
  // Written instead of the true counts (reader tests: corrupt headers).
  std::optional<uint64_t> tensor_count_override;
  std::optional<uint64_t> kv_count_override;

  // One key with its type and encoded value (for arrays: element type, count, elements).
  void kv_raw(const std::string& key, uint32_t type, std::span<const std::byte> payload);
  void kv_u32(const std::string& key, uint32_t value);
  void kv_i32(const std::string& key, int32_t value);
  void kv_f32(const std::string& key, float value);
  void kv_bool(const std::string& key, bool value);
  void kv_string(const std::string& key, const std::string& value);
  void kv_strings(const std::string& key, const std::vector<std::string>& values);
  void kv_i32s(const std::string& key, const std::vector<int32_t>& values);
  void kv_f32s(const std::string& key, const std::vector<float>& values);

  // A tensor of `shape` (PyTorch order; written reversed as GGUF's ne) whose encoded bytes the writer keeps.
  // `offset` replaces the computed data offset (reader tests).
  void tensor(const std::string& name, const Shape& shape, uint32_t ggml_type, Bytes data,
              std::optional<uint64_t> offset = std::nullopt);
  // An f32 tensor taken over without copying its data.
  void tensor_f32(const std::string& name, Tensor value);

  // The whole file in memory (small files, tests), or streamed to `path` (FileError naming it on failure).
  Bytes bytes() const;
  void write(const std::filesystem::path& path) const;

 private:
  struct PendingTensor {
    std::string name;
    Shape shape;
    uint32_t type;
    Bytes owned;
    Tensor value;  // f32 data when `owned` is unused
    std::optional<uint64_t> offset;
    std::span<const std::byte> data() const;
  };
  // Everything before the data section, padded to the alignment when tensors follow; the data offset of each.
  Bytes header(std::vector<uint64_t>& offsets) const;

  Bytes kvs_;
  uint64_t kv_count_ = 0;
  std::vector<PendingTensor> tensors_;
};

}  // namespace jagged::io
