#include "io/gguf.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>

#include "core/quant_blocks.h"
#include "jagged/error.h"

namespace jagged::io {
namespace {

static_assert(std::endian::native == std::endian::little, "the GGUF reader assumes a little-endian host");

// GGUF metadata value types.
enum ValueType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5, kFloat32 = 6, kBool = 7,
  kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11, kFloat64 = 12,
};

// Bytes of a fixed-size value type; 0 for strings and arrays.
uint64_t fixed_value_size(uint32_t type) {
  switch (type) {
    case kUint8: case kInt8: case kBool: return 1;
    case kUint16: case kInt16: return 2;
    case kUint32: case kInt32: case kFloat32: return 4;
    case kUint64: case kInt64: case kFloat64: return 8;
    default: return 0;
  }
}

// ggml tensor types: name, elements per block, bytes per block. block 0: an id ggml has retired.
struct TypeLayout {
  const char* name;
  uint32_t block;
  uint32_t block_bytes;
};
constexpr TypeLayout kGgmlTypes[] = {
    {"F32", 1, 4},        {"F16", 1, 2},       {"Q4_0", 32, 18},     {"Q4_1", 32, 20},   {"Q4_2", 0, 0},
    {"Q4_3", 0, 0},       {"Q5_0", 32, 22},    {"Q5_1", 32, 24},     {"Q8_0", 32, 34},   {"Q8_1", 32, 36},
    {"Q2_K", 256, 84},    {"Q3_K", 256, 110},  {"Q4_K", 256, 144},   {"Q5_K", 256, 176}, {"Q6_K", 256, 210},
    {"Q8_K", 256, 292},   {"IQ2_XXS", 256, 66}, {"IQ2_XS", 256, 74}, {"IQ3_XXS", 256, 98}, {"IQ1_S", 256, 50},
    {"IQ4_NL", 32, 18},   {"IQ3_S", 256, 110}, {"IQ2_S", 256, 82},   {"IQ4_XS", 256, 136}, {"I8", 1, 1},
    {"I16", 1, 2},        {"I32", 1, 4},       {"I64", 1, 8},        {"F64", 1, 8},      {"IQ1_M", 256, 56},
    {"BF16", 1, 2},       {"Q4_0_4_4", 0, 0},  {"Q4_0_4_8", 0, 0},   {"Q4_0_8_8", 0, 0}, {"TQ1_0", 256, 54},
    {"TQ2_0", 256, 66},   {"IQ4_NL_4_4", 0, 0}, {"IQ4_NL_4_8", 0, 0}, {"IQ4_NL_8_8", 0, 0}, {"MXFP4", 32, 17},
};
constexpr uint32_t kNumGgmlTypes = sizeof(kGgmlTypes) / sizeof(kGgmlTypes[0]);
constexpr uint32_t kTypeF32 = 0, kTypeF16 = 1, kTypeBF16 = 30;

const TypeLayout* type_layout(uint32_t ggml_type) {
  if (ggml_type >= kNumGgmlTypes || kGgmlTypes[ggml_type].block == 0) return nullptr;
  return &kGgmlTypes[ggml_type];
}

// Smallest encodings, used to bound counts by the bytes left before anything is allocated.
constexpr uint64_t kMinKeyValueBytes = 8 + 4 + 1;         // empty key, type, one-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;  // 1-char name, n_dims, one ne, type, offset
constexpr uint32_t kMaxDims = 4;

// A bounds-checked little-endian cursor over the file; every read names what it was reading when it fails.
class Reader {
 public:
  Reader(std::span<const std::byte> bytes, std::string file) : bytes_(bytes), file_(std::move(file)) {}

  uint64_t position() const { return position_; }
  uint64_t remaining() const { return bytes_.size() - position_; }

  [[noreturn]] void fail(const std::string& problem) const { throw FileError(concat(file_, ": ", problem)); }

  void need(uint64_t count, const std::string& what) const {
    if (count > remaining()) {
      fail(concat("truncated: ", what, " needs ", count, " bytes at offset ", position_, ", only ", remaining(),
                  " left (file size ", bytes_.size(), ")"));
    }
  }

  template <typename T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T value;
    std::memcpy(&value, bytes_.data() + position_, sizeof(T));
    position_ += sizeof(T);
    return value;
  }

  std::string read_string(const std::string& what) {
    const uint64_t length = read<uint64_t>(concat("the length of ", what));
    need(length, concat(what, " (", length, " bytes)"));
    std::string text(reinterpret_cast<const char*>(bytes_.data() + position_), static_cast<size_t>(length));
    position_ += length;
    return text;
  }

 private:
  std::span<const std::byte> bytes_;
  std::string file_;
  uint64_t position_ = 0;
};

GgufValue::Array::value_type read_scalar(Reader& reader, uint32_t type, const std::string& what) {
  switch (type) {
    case kUint8: return uint64_t{reader.read<uint8_t>(what)};
    case kInt8: return int64_t{reader.read<int8_t>(what)};
    case kUint16: return uint64_t{reader.read<uint16_t>(what)};
    case kInt16: return int64_t{reader.read<int16_t>(what)};
    case kUint32: return uint64_t{reader.read<uint32_t>(what)};
    case kInt32: return int64_t{reader.read<int32_t>(what)};
    case kUint64: return reader.read<uint64_t>(what);
    case kInt64: return reader.read<int64_t>(what);
    case kFloat32: return double{reader.read<float>(what)};
    case kFloat64: return reader.read<double>(what);
    case kBool: {
      const uint8_t byte = reader.read<uint8_t>(what);
      if (byte > 1) reader.fail(concat(what, ": bool value ", int{byte}, " is neither 0 nor 1"));
      return byte == 1;
    }
    case kString: return reader.read_string(what);
    default: reader.fail(concat(what, ": unknown metadata value type ", type));
  }
}

GgufValue read_value(Reader& reader, uint32_t type, const std::string& key) {
  const std::string what = concat("metadata value of '", key, "'");
  if (type != kArray) return GgufValue{std::visit([](auto&& v) -> decltype(GgufValue::value) { return v; },
                                                 read_scalar(reader, type, what))};
  const uint32_t element_type = reader.read<uint32_t>(concat("the element type of ", what));
  if (element_type == kArray) reader.fail(concat(what, ": arrays of arrays are not supported"));
  if (element_type > kFloat64) reader.fail(concat(what, ": unknown array element type ", element_type));
  const uint64_t count = reader.read<uint64_t>(concat("the element count of ", what));
  const uint64_t element_bytes = element_type == kString ? 8 : fixed_value_size(element_type);
  if (count > reader.remaining() / element_bytes) {
    reader.fail(concat("truncated: ", what, " declares ", count, " elements of at least ", element_bytes,
                       " bytes, only ", reader.remaining(), " bytes left"));
  }
  GgufValue::Array array;
  array.reserve(static_cast<size_t>(count));  // bounded by the bytes left, checked above
  for (uint64_t i = 0; i < count; ++i) array.push_back(read_scalar(reader, element_type, what));
  return GgufValue{std::move(array)};
}

const char* kind_name(size_t index) {
  static const char* const names[] = {"a signed integer", "an unsigned integer", "a float", "a bool", "a string",
                                      "an array"};
  return index < 6 ? names[index] : "unknown";
}

[[noreturn]] void wrong_kind(const std::string& key, const char* wanted, size_t index) {
  throw FileError(concat("metadata key '", key, "' is ", kind_name(index), ", expected ", wanted));
}

std::optional<int64_t> element_as_int(const GgufValue::Array::value_type& element) {
  if (const auto* value = std::get_if<int64_t>(&element)) return *value;
  if (const auto* value = std::get_if<uint64_t>(&element)) {
    if (*value <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return static_cast<int64_t>(*value);
  }
  return std::nullopt;
}

std::optional<double> element_as_float(const GgufValue::Array::value_type& element) {
  if (const auto* value = std::get_if<double>(&element)) return *value;
  if (const auto* value = std::get_if<int64_t>(&element)) return static_cast<double>(*value);
  if (const auto* value = std::get_if<uint64_t>(&element)) return static_cast<double>(*value);
  return std::nullopt;
}

const GgufValue::Array& as_array(const GgufValue& value, const std::string& key, const char* wanted) {
  const auto* array = std::get_if<GgufValue::Array>(&value.value);
  if (array == nullptr) wrong_kind(key, wanted, value.value.index());
  return *array;
}

}  // namespace

std::string ggml_type_name(uint32_t ggml_type) {
  if (ggml_type < kNumGgmlTypes) return kGgmlTypes[ggml_type].name;
  return concat("type ", ggml_type);
}

int64_t GgufValue::as_int(const std::string& key) const {
  std::optional<int64_t> result;
  std::visit(
      [&](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, int64_t> || std::is_same_v<V, uint64_t>) result = element_as_int(v);
      },
      value);
  if (!result) {
    if (std::holds_alternative<uint64_t>(value)) {
      throw FileError(concat("metadata key '", key, "': value ", std::get<uint64_t>(value), " is too large"));
    }
    wrong_kind(key, "an integer", value.index());
  }
  return *result;
}

double GgufValue::as_float(const std::string& key) const {
  std::optional<double> result;
  std::visit(
      [&](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, int64_t> || std::is_same_v<V, uint64_t> || std::is_same_v<V, double>) {
          result = element_as_float(v);
        }
      },
      value);
  if (!result) wrong_kind(key, "a number", value.index());
  return *result;
}

bool GgufValue::as_bool(const std::string& key) const {
  if (const auto* flag = std::get_if<bool>(&value)) return *flag;
  wrong_kind(key, "a bool", value.index());
}

const std::string& GgufValue::as_string(const std::string& key) const {
  if (const auto* text = std::get_if<std::string>(&value)) return *text;
  wrong_kind(key, "a string", value.index());
}

std::vector<std::string> GgufValue::as_strings(const std::string& key) const {
  const Array& array = as_array(*this, key, "an array of strings");
  std::vector<std::string> result;
  result.reserve(array.size());
  for (const auto& element : array) {
    const auto* text = std::get_if<std::string>(&element);
    if (text == nullptr) wrong_kind(key + " (element)", "a string", element.index());
    result.push_back(*text);
  }
  return result;
}

std::vector<double> GgufValue::as_floats(const std::string& key) const {
  const Array& array = as_array(*this, key, "an array of numbers");
  std::vector<double> result;
  result.reserve(array.size());
  for (const auto& element : array) {
    const std::optional<double> number = element_as_float(element);
    if (!number) wrong_kind(key + " (element)", "a number", element.index());
    result.push_back(*number);
  }
  return result;
}

std::vector<int64_t> GgufValue::as_ints(const std::string& key) const {
  const Array& array = as_array(*this, key, "an array of integers");
  std::vector<int64_t> result;
  result.reserve(array.size());
  for (const auto& element : array) {
    const std::optional<int64_t> number = element_as_int(element);
    if (!number) wrong_kind(key + " (element)", "an integer", element.index());
    result.push_back(*number);
  }
  return result;
}

GgufFile GgufFile::open(const std::filesystem::path& path) { return parse(MappedFile::open(path)); }

GgufFile GgufFile::parse(std::shared_ptr<const MappedFile> file) {
  GgufFile gguf;
  gguf.path_ = file->path();
  gguf.file_ = file;
  const std::string name = file->path().string();
  Reader reader(file->bytes(), name);

  // Header: magic, version, tensor count, metadata count.
  if (file->size() < 4 || std::memcmp(file->bytes().data(), "GGUF", 4) != 0) {
    reader.fail("not a GGUF file (the first 4 bytes are not the magic \"GGUF\")");
  }
  reader.read<uint32_t>("magic");
  gguf.version_ = reader.read<uint32_t>("the version");
  if (gguf.version_ == 1) {
    reader.fail("GGUF version 1 is not supported (it predates 64-bit counts); re-convert the model to GGUF v3");
  }
  if (gguf.version_ != 2 && gguf.version_ != 3) {
    if (gguf.version_ == 0x02000000u || gguf.version_ == 0x03000000u) {
      reader.fail("big-endian GGUF files are not supported");
    }
    reader.fail(concat("unsupported GGUF version ", gguf.version_, " (expected 2 or 3)"));
  }
  const uint64_t tensor_count = reader.read<uint64_t>("the tensor count");
  const uint64_t kv_count = reader.read<uint64_t>("the metadata count");
  // Bound both counts by the bytes left before any container grows with them.
  if (tensor_count > reader.remaining() / kMinTensorInfoBytes || kv_count > reader.remaining() / kMinKeyValueBytes ||
      tensor_count * kMinTensorInfoBytes + kv_count * kMinKeyValueBytes > reader.remaining()) {
    reader.fail(concat("truncated or corrupt header: ", tensor_count, " tensors and ", kv_count,
                       " metadata entries cannot fit in the ", reader.remaining(), " bytes left"));
  }

  for (uint64_t i = 0; i < kv_count; ++i) {
    std::string key = reader.read_string(concat("metadata key #", i));
    const uint32_t type = reader.read<uint32_t>(concat("the type of metadata key '", key, "'"));
    GgufValue value = read_value(reader, type, key);
    if (!gguf.metadata_.emplace(key, std::move(value)).second) reader.fail(concat("duplicate metadata key '", key, "'"));
  }

  if (const GgufValue* alignment = gguf.find("general.alignment")) {
    int64_t value = 0;
    try {
      value = alignment->as_int("general.alignment");
    } catch (const FileError& error) {
      reader.fail(error.what());
    }
    if (value <= 0 || value > (int64_t{1} << 30) || !std::has_single_bit(static_cast<uint64_t>(value))) {
      reader.fail(concat("general.alignment ", value, " is not a power of two in [1, 2^30]"));
    }
    gguf.alignment_ = static_cast<uint64_t>(value);
  }

  gguf.tensors_.reserve(static_cast<size_t>(tensor_count));  // bounded above
  for (uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensorInfo info;
    info.name = reader.read_string(concat("the name of tensor #", i));
    const std::string what = concat("tensor '", info.name, "'");
    if (info.name.empty()) reader.fail(concat("tensor #", i, " has an empty name"));
    const uint32_t n_dims = reader.read<uint32_t>(concat("the rank of ", what));
    if (n_dims == 0 || n_dims > kMaxDims) reader.fail(concat(what, ": rank ", n_dims, " is outside [1, 4]"));
    uint64_t ne[kMaxDims] = {};
    uint64_t numel = 1;
    for (uint32_t axis = 0; axis < n_dims; ++axis) {
      ne[axis] = reader.read<uint64_t>(concat("the extents of ", what));
      if (ne[axis] > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          __builtin_mul_overflow(numel, ne[axis], &numel) ||
          numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        reader.fail(concat(what, ": element count overflows (extent ", ne[axis], " on axis ", axis, ")"));
      }
    }
    for (uint32_t axis = n_dims; axis-- > 0;) info.shape.push_back(static_cast<int64_t>(ne[axis]));
    info.ggml_type = reader.read<uint32_t>(concat("the type of ", what));
    const TypeLayout* layout = type_layout(info.ggml_type);
    if (layout == nullptr) reader.fail(concat(what, ": unknown tensor type ", ggml_type_name(info.ggml_type)));
    if (ne[0] % layout->block != 0) {
      reader.fail(concat(what, ": innermost extent ", ne[0], " is not a multiple of the ", layout->name,
                         " block size ", layout->block));
    }
    if (__builtin_mul_overflow(numel / layout->block, uint64_t{layout->block_bytes}, &info.nbytes)) {
      reader.fail(concat(what, ": byte size overflows"));
    }
    info.offset = reader.read<uint64_t>(concat("the data offset of ", what));
    if (info.offset % gguf.alignment_ != 0) {
      reader.fail(concat(what, ": data offset ", info.offset, " is not a multiple of the alignment ", gguf.alignment_));
    }
    gguf.tensors_.push_back(std::move(info));
  }

  // The data section starts at the next multiple of the alignment (files with no tensors may end before it).
  const uint64_t end_of_header = reader.position();
  gguf.data_offset_ = (end_of_header + gguf.alignment_ - 1) / gguf.alignment_ * gguf.alignment_;
  if (tensor_count > 0 && gguf.data_offset_ > file->size()) {
    reader.fail(concat("truncated: the data section would start at ", gguf.data_offset_, " past the end of the file (",
                       file->size(), " bytes)"));
  }
  const uint64_t data_size = tensor_count > 0 ? file->size() - gguf.data_offset_ : 0;

  std::vector<const GgufTensorInfo*> by_offset;
  by_offset.reserve(gguf.tensors_.size());
  std::vector<std::string_view> names;
  names.reserve(gguf.tensors_.size());
  for (const GgufTensorInfo& info : gguf.tensors_) {
    if (info.offset > data_size || info.nbytes > data_size - info.offset) {
      reader.fail(concat("tensor '", info.name, "': data [", info.offset, ", ", info.offset + info.nbytes,
                         ") of the data section runs past its end (", data_size, " bytes; truncated file?)"));
    }
    by_offset.push_back(&info);
    names.push_back(info.name);
  }
  std::sort(names.begin(), names.end());
  if (const auto duplicate = std::adjacent_find(names.begin(), names.end()); duplicate != names.end()) {
    reader.fail(concat("duplicate tensor name '", *duplicate, "'"));
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  const GgufTensorInfo* previous = nullptr;
  for (const GgufTensorInfo* info : by_offset) {
    if (info->nbytes == 0) continue;
    if (previous != nullptr && previous->offset + previous->nbytes > info->offset) {
      reader.fail(concat("tensors '", previous->name, "' [", previous->offset, ", ", previous->offset + previous->nbytes,
                         ") and '", info->name, "' [", info->offset, ", ", info->offset + info->nbytes, ") overlap"));
    }
    previous = info;
  }
  return gguf;
}

const GgufValue* GgufFile::find(const std::string& key) const {
  const auto found = metadata_.find(key);
  return found == metadata_.end() ? nullptr : &found->second;
}

const GgufValue& GgufFile::get(const std::string& key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) throw FileError(concat(path_.string(), ": missing metadata key '", key, "'"));
  return *value;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  for (const GgufTensorInfo& info : tensors_) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

void GgufFile::check_readable(const GgufTensorInfo& info) const {
  if (info.ggml_type == kTypeF32 || info.ggml_type == kTypeF16 || info.ggml_type == kTypeBF16 ||
      quant_type_of_ggml(info.ggml_type)) {
    return;
  }
  throw FileError(concat(path_.string(), ": unsupported tensor type ", ggml_type_name(info.ggml_type), " in tensor ",
                         info.name, "; supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K"));
}

namespace {

// F32, F16 or BF16 (check_readable has refused the rest but the block types).
DType float_dtype_of(const GgufTensorInfo& info) {
  return info.ggml_type == kTypeF32 ? DType::f32 : info.ggml_type == kTypeF16 ? DType::f16 : DType::bf16;
}

}  // namespace

Tensor GgufFile::read_f32(const GgufTensorInfo& info) const {
  check_readable(info);
  if (const std::optional<QuantType> type = quant_type_of_ggml(info.ggml_type)) {
    // Widened exactly (core/quant_blocks); read_stored keeps the blocks instead.
    Tensor out(info.shape);
    dequantize_row(*type, reinterpret_cast<const uint8_t*>(file_->bytes().data() + data_offset_ + info.offset),
                   out.numel(), out.data<float>());
    return out;
  }
  return f32_tensor_from_file(file_, data_offset_ + info.offset, info.shape, float_dtype_of(info));
}

Tensor GgufFile::read_stored(const GgufTensorInfo& info) const {
  check_readable(info);
  const std::optional<QuantType> type = quant_type_of_ggml(info.ggml_type);
  if (!type) {
    return stored_tensor_from_file(file_, data_offset_ + info.offset, info.shape, float_dtype_of(info));
  }
  // The parser checked the innermost extent against the block and the byte range against the file.
  return Tensor::borrow(file_, file_->bytes().data() + data_offset_ + info.offset, info.shape, dtype_of(*type),
                        file_->mapped());
}

}  // namespace jagged::io
