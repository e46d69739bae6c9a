#include "io/gguf_writer.h"

#include <bit>
#include <cstring>
#include <fstream>

#include "jagged/error.h"

namespace jagged::io {
namespace {

static_assert(std::endian::native == std::endian::little, "the GGUF writer assumes a little-endian host");

using Bytes = GgufWriter::Bytes;

// resize + memcpy rather than vector::insert, which GCC 12's -Wstringop-overflow misreads here.
void append_bytes(Bytes& out, const void* data, size_t size) {
  if (size == 0) return;
  const size_t at = out.size();
  out.resize(at + size);
  std::memcpy(out.data() + at, data, size);
}

template <typename T>
void append_pod(Bytes& out, const T& value) {
  append_bytes(out, &value, sizeof(T));
}

void append_string(Bytes& out, const std::string& text) {
  append_pod(out, uint64_t{text.size()});
  append_bytes(out, text.data(), text.size());
}

uint64_t align_up(uint64_t value, uint64_t alignment) { return (value + alignment - 1) / alignment * alignment; }

template <typename T>
Bytes array_payload(uint32_t element_type, const std::vector<T>& values) {
  Bytes payload;
  append_pod(payload, element_type);
  append_pod(payload, uint64_t{values.size()});
  for (const T& value : values) append_pod(payload, value);
  return payload;
}

}  // namespace

void GgufWriter::kv_raw(const std::string& key, uint32_t type, std::span<const std::byte> payload) {
  append_string(kvs_, key);
  append_pod(kvs_, type);
  append_bytes(kvs_, payload.data(), payload.size());
  ++kv_count_;
}

void GgufWriter::kv_u32(const std::string& key, uint32_t value) {
  kv_raw(key, kGgufU32, std::as_bytes(std::span(&value, 1)));
}
void GgufWriter::kv_i32(const std::string& key, int32_t value) {
  kv_raw(key, kGgufI32, std::as_bytes(std::span(&value, 1)));
}
void GgufWriter::kv_f32(const std::string& key, float value) {
  kv_raw(key, kGgufF32, std::as_bytes(std::span(&value, 1)));
}
void GgufWriter::kv_bool(const std::string& key, bool value) {
  const uint8_t byte = value ? 1 : 0;
  kv_raw(key, kGgufBool, std::as_bytes(std::span(&byte, 1)));
}

void GgufWriter::kv_string(const std::string& key, const std::string& value) {
  Bytes payload;
  append_string(payload, value);
  kv_raw(key, kGgufString, payload);
}

void GgufWriter::kv_strings(const std::string& key, const std::vector<std::string>& values) {
  Bytes payload;
  append_pod(payload, uint32_t{kGgufString});
  append_pod(payload, uint64_t{values.size()});
  for (const std::string& value : values) append_string(payload, value);
  kv_raw(key, kGgufArray, payload);
}

void GgufWriter::kv_i32s(const std::string& key, const std::vector<int32_t>& values) {
  kv_raw(key, kGgufArray, array_payload(kGgufI32, values));
}

void GgufWriter::kv_f32s(const std::string& key, const std::vector<float>& values) {
  kv_raw(key, kGgufArray, array_payload(kGgufF32, values));
}

void GgufWriter::tensor(const std::string& name, const Shape& shape, uint32_t ggml_type, Bytes data,
                        std::optional<uint64_t> offset) {
  tensors_.push_back({name, shape, ggml_type, std::move(data), Tensor(), offset});
}

void GgufWriter::tensor_f32(const std::string& name, Tensor value) {
  if (value.dtype() != DType::f32) throw InvalidArgument(concat("GGUF writer: tensor ", name, " is not f32"));
  Shape shape = value.shape();
  tensors_.push_back({name, std::move(shape), kGgmlF32, Bytes(), std::move(value), std::nullopt});
}

std::span<const std::byte> GgufWriter::PendingTensor::data() const {
  if (!value.defined()) return owned;
  return {static_cast<const std::byte*>(value.raw_data()), value.nbytes()};
}

Bytes GgufWriter::header(std::vector<uint64_t>& offsets) const {
  Bytes out;
  append_bytes(out, "GGUF", 4);
  append_pod(out, version);
  append_pod(out, tensor_count_override.value_or(tensors_.size()));
  append_pod(out, kv_count_override.value_or(kv_count_));
  append_bytes(out, kvs_.data(), kvs_.size());
  offsets.clear();
  uint64_t data_size = 0;
  for (const PendingTensor& tensor : tensors_) {
    data_size = align_up(data_size, alignment);
    offsets.push_back(tensor.offset.value_or(data_size));
    data_size += tensor.data().size();
  }
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const PendingTensor& tensor = tensors_[i];
    append_string(out, tensor.name);
    append_pod(out, static_cast<uint32_t>(tensor.shape.size()));
    for (size_t axis = tensor.shape.size(); axis-- > 0;) append_pod(out, static_cast<uint64_t>(tensor.shape[axis]));
    append_pod(out, tensor.type);
    append_pod(out, offsets[i]);
  }
  if (!tensors_.empty()) out.resize(align_up(out.size(), alignment));
  return out;
}

Bytes GgufWriter::bytes() const {
  std::vector<uint64_t> offsets;
  Bytes out = header(offsets);
  const size_t data_start = out.size();
  uint64_t at = 0;
  for (const PendingTensor& tensor : tensors_) {
    at = align_up(at, alignment);
    const std::span<const std::byte> data = tensor.data();
    out.resize(data_start + at + data.size());
    if (!data.empty()) std::memcpy(out.data() + data_start + at, data.data(), data.size());
    at += data.size();
  }
  return out;
}

void GgufWriter::write(const std::filesystem::path& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw FileError(concat(path.string(), ": cannot open for writing"));
  const auto put = [&](std::span<const std::byte> bytes) {
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  };
  std::vector<uint64_t> offsets;
  put(header(offsets));
  const Bytes padding(alignment);
  uint64_t at = 0;
  for (const PendingTensor& tensor : tensors_) {
    put(std::span(padding).first(align_up(at, alignment) - at));
    at = align_up(at, alignment);
    put(tensor.data());
    at += tensor.data().size();
  }
  out.flush();
  if (!out) throw FileError(concat(path.string(), ": could not write the GGUF file (disk full?)"));
}

}  // namespace jagged::io
