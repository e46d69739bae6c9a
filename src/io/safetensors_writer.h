// Writing f32 tensors as a .safetensors file (8-byte little-endian header size, JSON header, raw data), so
// other engines (PyTorch in bench/) can run exactly jagged's weights.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "jagged/tensor.h"

namespace jagged::io {

// Tensors in the given order; FileError naming the file when it cannot be written.
void write_safetensors(const std::filesystem::path& path, const std::vector<std::pair<std::string, const Tensor*>>& tensors);

}  // namespace jagged::io
