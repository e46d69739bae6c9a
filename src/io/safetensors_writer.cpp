#include "io/safetensors_writer.h"

#include <fstream>

#include <nlohmann/json.hpp>

namespace jagged::io {

void write_safetensors(const std::filesystem::path& path,
                       const std::vector<std::pair<std::string, const Tensor*>>& tensors) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (tensor->dtype() != DType::f32) {
      throw InvalidArgument(concat("write_safetensors: ", name, " is ", dtype_name(tensor->dtype()), ", only f32 is written"));
    }
    header[name] = {{"dtype", "F32"}, {"shape", tensor->shape()}, {"data_offsets", {offset, offset + tensor->nbytes()}}};
    offset += tensor->nbytes();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned
  std::ofstream out(path, std::ios::binary);
  const uint64_t size = text.size();
  unsigned char size_bytes[8];
  for (int i = 0; i < 8; ++i) size_bytes[i] = static_cast<unsigned char>(size >> (8 * i));
  out.write(reinterpret_cast<const char*>(size_bytes), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& entry : tensors) {
    out.write(static_cast<const char*>(entry.second->raw_data()), static_cast<std::streamsize>(entry.second->nbytes()));
  }
  if (!out) throw FileError(concat(path.string(), ": could not write the safetensors file"));
}

}  // namespace jagged::io
