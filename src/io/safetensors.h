// safetensors reader: an 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets},
// "__metadata__": {...}}, then the data section. Everything in the header is validated against the file before
// any tensor is read; the file is memory-mapped. Errors are FileError naming the file and the problem.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/mapped_file.h"
#include "jagged/tensor.h"

namespace jagged::io {

struct SafetensorsTensorInfo {
  std::string name;
  std::string dtype;  // as written in the file: "F32", "BF16", "I64"...
  Shape shape;        // PyTorch order, as stored
  uint64_t begin = 0;  // byte range in the data section
  uint64_t end = 0;
};

class SafetensorsFile {
 public:
  static SafetensorsFile open(const std::filesystem::path& path);
  // Parses an already mapped (or in-memory) file; errors name file->path().
  static SafetensorsFile parse(std::shared_ptr<const MappedFile> file);

  const std::filesystem::path& path() const { return path_; }
  const std::vector<SafetensorsTensorInfo>& tensors() const { return tensors_; }  // sorted by name
  const SafetensorsTensorInfo* find_tensor(const std::string& name) const;       // nullptr when absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  uint64_t data_offset() const { return data_offset_; }  // start of the data section in the file

  // FileError naming the tensor and its dtype unless it is F32, F16 or BF16.
  void check_readable(const SafetensorsTensorInfo& info) const;
  // The tensor as f32 (F32 borrowed from the mapping when aligned, F16/BF16 converted).
  Tensor read_f32(const SafetensorsTensorInfo& info) const;
  // As stored (f32, f16 or bf16), borrowed from the mapping when aligned.
  Tensor read_stored(const SafetensorsTensorInfo& info) const;

 private:
  std::filesystem::path path_;
  std::vector<SafetensorsTensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
  std::shared_ptr<const MappedFile> file_;
  uint64_t data_offset_ = 0;
};

}  // namespace jagged::io
