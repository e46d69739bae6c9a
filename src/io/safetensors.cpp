#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "jagged/error.h"

namespace jagged::io {
namespace {

using nlohmann::json;

// Element sizes of the dtypes the format defines; a dtype missing here is rejected when the header is parsed.
uint64_t dtype_bytes(const std::string& dtype) {
  static const std::map<std::string, uint64_t> sizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
      {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"F64", 8},     {"I64", 8}, {"U64", 8}};
  const auto found = sizes.find(dtype);
  return found == sizes.end() ? 0 : found->second;
}

constexpr uint64_t kMaxRank = 8;

}  // namespace

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) { return parse(MappedFile::open(path)); }

SafetensorsFile SafetensorsFile::parse(std::shared_ptr<const MappedFile> file) {
  SafetensorsFile result;
  result.path_ = file->path();
  result.file_ = file;
  const std::string name = file->path().string();
  const auto fail = [&](const std::string& problem) { throw FileError(concat(name, ": ", problem)); };

  const uint64_t size = file->size();
  if (size < 8) fail(concat("truncated: ", size, " bytes, too short for the 8-byte safetensors header length"));
  uint64_t header_length = 0;
  std::memcpy(&header_length, file->bytes().data(), sizeof(header_length));
  if (header_length > size - 8) {
    fail(concat("header length ", header_length, " runs past the end of the file (", size,
                " bytes; truncated, or not a safetensors file)"));
  }
  const char* header_text = reinterpret_cast<const char*>(file->bytes().data() + 8);
  const json header = json::parse(header_text, header_text + header_length, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) fail(concat("the ", header_length, "-byte JSON header does not parse"));
  if (!header.is_object()) fail("the JSON header is not an object");
  result.data_offset_ = 8 + header_length;
  const uint64_t data_size = size - result.data_offset_;

  for (const auto& [key, entry] : header.items()) {
    if (key == "__metadata__") {
      if (!entry.is_object()) fail("__metadata__ is not an object");
      for (const auto& [meta_key, meta_value] : entry.items()) {
        if (!meta_value.is_string()) fail(concat("__metadata__ value of '", meta_key, "' is not a string"));
        result.metadata_[meta_key] = meta_value.get<std::string>();
      }
      continue;
    }
    const std::string what = concat("tensor '", key, "'");
    if (!entry.is_object()) fail(concat(what, ": entry is not an object"));
    const auto dtype = entry.find("dtype");
    const auto shape = entry.find("shape");
    const auto offsets = entry.find("data_offsets");
    if (dtype == entry.end() || !dtype->is_string()) fail(concat(what, ": missing or non-string dtype"));
    if (shape == entry.end() || !shape->is_array() || shape->size() > kMaxRank) {
      fail(concat(what, ": missing shape, or not an array of at most ", kMaxRank, " extents"));
    }
    if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned() ||
        !(*offsets)[1].is_number_unsigned()) {
      fail(concat(what, ": data_offsets must be [begin, end] of non-negative integers"));
    }
    SafetensorsTensorInfo info;
    info.name = key;
    info.dtype = dtype->get<std::string>();
    const uint64_t element_bytes = dtype_bytes(info.dtype);
    if (element_bytes == 0) fail(concat(what, ": unknown dtype ", info.dtype));
    uint64_t numel = 1;
    for (const json& extent : *shape) {
      if (!extent.is_number_unsigned()) fail(concat(what, ": shape ", shape->dump(), " has a non-integer extent"));
      const uint64_t value = extent.get<uint64_t>();
      if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          __builtin_mul_overflow(numel, value, &numel)) {
        fail(concat(what, ": shape ", shape->dump(), " overflows"));
      }
      info.shape.push_back(static_cast<int64_t>(value));
    }
    uint64_t nbytes = 0;
    if (numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
        __builtin_mul_overflow(numel, element_bytes, &nbytes)) {
      fail(concat(what, ": shape ", shape->dump(), " overflows"));
    }
    info.begin = (*offsets)[0].get<uint64_t>();
    info.end = (*offsets)[1].get<uint64_t>();
    if (info.begin > info.end) fail(concat(what, ": data_offsets [", info.begin, ", ", info.end, "] are reversed"));
    if (info.end > data_size) {
      fail(concat(what, ": data_offsets [", info.begin, ", ", info.end, "] run past the end of the data section (",
                  data_size, " bytes; truncated file?)"));
    }
    if (info.end - info.begin != nbytes) {
      fail(concat(what, ": data_offsets [", info.begin, ", ", info.end, "] hold ", info.end - info.begin,
                  " bytes, but ", info.dtype, " ", shape_string(info.shape), " needs ", nbytes));
    }
    result.tensors_.push_back(std::move(info));
  }

  // nlohmann's object keeps keys sorted, so tensors_ is sorted by name; overlaps are found in offset order.
  std::vector<const SafetensorsTensorInfo*> by_offset;
  by_offset.reserve(result.tensors_.size());
  for (const auto& info : result.tensors_) {
    if (info.end > info.begin) by_offset.push_back(&info);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](const auto* a, const auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const auto* previous = by_offset[i - 1];
    const auto* current = by_offset[i];
    if (previous->end > current->begin) {
      fail(concat("tensors '", previous->name, "' [", previous->begin, ", ", previous->end, ") and '", current->name,
                  "' [", current->begin, ", ", current->end, ") overlap"));
    }
  }
  return result;
}

const SafetensorsTensorInfo* SafetensorsFile::find_tensor(const std::string& name) const {
  const auto found = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                                      [](const SafetensorsTensorInfo& info, const std::string& key) { return info.name < key; });
  return found != tensors_.end() && found->name == name ? &*found : nullptr;
}

void SafetensorsFile::check_readable(const SafetensorsTensorInfo& info) const {
  if (info.dtype == "F32" || info.dtype == "F16" || info.dtype == "BF16") return;
  throw FileError(concat(path_.string(), ": unsupported dtype ", info.dtype, " in tensor ", info.name,
                         " (supported: F32, F16, BF16)"));
}

namespace {

DType stored_dtype_of(const SafetensorsTensorInfo& info) {
  return info.dtype == "F32" ? DType::f32 : info.dtype == "F16" ? DType::f16 : DType::bf16;
}

}  // namespace

Tensor SafetensorsFile::read_f32(const SafetensorsTensorInfo& info) const {
  check_readable(info);
  return f32_tensor_from_file(file_, data_offset_ + info.begin, info.shape, stored_dtype_of(info));
}

Tensor SafetensorsFile::read_stored(const SafetensorsTensorInfo& info) const {
  check_readable(info);
  return stored_tensor_from_file(file_, data_offset_ + info.begin, info.shape, stored_dtype_of(info));
}

}  // namespace jagged::io
