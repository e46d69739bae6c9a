// GGUF v2/v3 reader: validates the header, metadata and tensor table against the file size before any tensor
// is touched; memory-maps the file. Errors are FileError naming the file and the problem.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "jagged/tensor.h"
#include "io/mapped_file.h"

namespace jagged::io {

// One metadata value. Arrays hold scalars or strings (GGUF arrays of arrays are rejected).
struct GgufValue {
  using Array = std::vector<std::variant<int64_t, uint64_t, double, bool, std::string>>;
  std::variant<int64_t, uint64_t, double, bool, std::string, Array> value;

  // Typed accessors; throw FileError naming `key` when the value has another type.
  int64_t as_int(const std::string& key) const;     // any integer type
  double as_float(const std::string& key) const;    // float or integer
  bool as_bool(const std::string& key) const;
  const std::string& as_string(const std::string& key) const;
  std::vector<std::string> as_strings(const std::string& key) const;
  std::vector<double> as_floats(const std::string& key) const;
  std::vector<int64_t> as_ints(const std::string& key) const;
};

struct GgufTensorInfo {
  std::string name;
  Shape shape;          // PyTorch order: GGUF's ne reversed, so [out_features, in_features] for weights
  uint32_t ggml_type;   // 0 f32, 1 f16, 30 bf16; others are reported as unsupported when read
  uint64_t offset;      // from the start of the data section
  uint64_t nbytes;
};

// ggml's name of a tensor type ("F32", "Q4_K"...), or "type <n>" for an unknown one.
std::string ggml_type_name(uint32_t ggml_type);


class GgufFile {
 public:
  static GgufFile open(const std::filesystem::path& path);  // also works on vocab-only files
  // Parses an already mapped (or in-memory) file; errors name file->path().
  static GgufFile parse(std::shared_ptr<const MappedFile> file);

  const std::filesystem::path& path() const { return path_; }
  uint32_t version() const { return version_; }
  const std::map<std::string, GgufValue>& metadata() const { return metadata_; }
  const GgufValue* find(const std::string& key) const;       // nullptr when absent
  const GgufValue& get(const std::string& key) const;        // FileError when absent
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(const std::string& name) const;
  // The tensor converted to f32 (f32 is borrowed from the mapping without a copy). FileError on other types.
  Tensor read_f32(const GgufTensorInfo& info) const;
  // As it is stored, borrowed from the mapping (no copy, no widening): a block type (Q4_K...) as a tensor of
  // that block dtype, F16/BF16 as f16/bf16 tensors, F32 as read_f32.
  Tensor read_stored(const GgufTensorInfo& info) const;
  // FileError naming the tensor and type when read_f32 cannot convert it (types other than F32, F16, BF16 and
  // the block types of core/quant_blocks.h).
  void check_readable(const GgufTensorInfo& info) const;
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // start of the data section in the file

 private:
  std::filesystem::path path_;
  uint32_t version_ = 0;
  std::map<std::string, GgufValue> metadata_;
  std::vector<GgufTensorInfo> tensors_;
  std::shared_ptr<const MappedFile> file_;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
};

}  // namespace jagged::io
