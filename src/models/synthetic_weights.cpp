#include "models/synthetic_weights.h"

#include <cmath>

#include "core/threads.h"

namespace jagged::models {
namespace {

uint64_t splitmix64(uint64_t value) {
  value += 0x9e3779b97f4a7c15ull;
  value = (value ^ (value >> 30)) * 0xbf58476d1ce4e5b9ull;
  value = (value ^ (value >> 27)) * 0x94d049bb133111ebull;
  return value ^ (value >> 31);
}

uint64_t hash_name(const std::string& name) {
  uint64_t hash = 1469598103934665603ull;  // FNV-1a
  for (const char ch : name) hash = (hash ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
  return hash;
}

}  // namespace

Tensor synthetic_tensor(const Shape& shape, uint64_t seed, const std::string& name, float center, float half_width) {
  Tensor tensor(shape);
  float* values = tensor.data<float>();
  const uint64_t stream = splitmix64(seed ^ hash_name(name));
  const int64_t count = tensor.numel();
  constexpr int64_t kChunk = 1 << 16;
  core::parallel_for((count + kChunk - 1) / kChunk, [&](int64_t chunk) {
    const int64_t end = std::min(count, (chunk + 1) * kChunk);
    for (int64_t i = chunk * kChunk; i < end; ++i) {
      const double unit = static_cast<double>(splitmix64(stream + static_cast<uint64_t>(i)) >> 11) * 0x1.0p-53;
      values[i] = center + half_width * static_cast<float>(2.0 * unit - 1.0);
    }
  });
  return tensor;
}

Tensor synthetic_matrix(int64_t out_features, int64_t in_features, uint64_t seed, const std::string& name) {
  // Uniform on [-a, a] has std a / sqrt(3).
  const float half_width = std::sqrt(3.0f / static_cast<float>(in_features));
  return synthetic_tensor({out_features, in_features}, seed, name, 0.0f, half_width);
}

}  // namespace jagged::models
