// Test helpers shared by all test folders: random ragged batches that always include the edge cases
// (length 0, length 1, one longer than any kernel tile), tolerances, and access to ../shared.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "jagged/tensor.h"

namespace jagged::testing {

// Named length sets every kernel test sweeps.
struct LengthCase {
  std::string name;
  std::vector<int64_t> lengths;
};

inline std::vector<LengthCase> ragged_length_cases(uint64_t seed = 7) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> short_len(0, 40);
  std::vector<int64_t> many(64);
  for (auto& length : many) length = short_len(rng);
  many[3] = 0;
  many[10] = 1;
  many[20] = 300;  // longer than any tile
  return {
      {"one_sequence", {37}},
      {"single_token", {1}},
      {"with_empty_and_one", {0, 5, 1, 0, 17}},
      {"long_beyond_tiles", {3, 300, 129}},
      {"many_64", many},
  };
}

inline Tensor random_tensor(const Shape& shape, uint64_t seed, float low = -1.0f, float high = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(low, high);
  std::vector<float> values(static_cast<size_t>(shape_numel(shape)));
  for (auto& value : values) value = dist(rng);
  return Tensor::from_floats(values, shape);
}

// Largest |a - b| over all elements; fails the test on a shape mismatch.
inline double max_abs_diff(const float* a, const float* b, int64_t count) {
  double worst = 0.0;
  for (int64_t i = 0; i < count; ++i) {
    const double diff = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (std::isnan(diff)) return INFINITY;
    worst = std::max(worst, diff);
  }
  return worst;
}

// The shared data directory (../shared beside the repo), or empty when absent. When absent the caller skips,
// unless JAGGED_REQUIRE_SHARED=1, where it fails.
inline std::filesystem::path shared_dir() {
  const std::filesystem::path path = std::filesystem::path(JAGGED_SOURCE_DIR) / ".." / "shared";
  return std::filesystem::exists(path) ? path : std::filesystem::path();
}

inline bool shared_required() {
  const char* value = std::getenv("JAGGED_REQUIRE_SHARED");
  return value != nullptr && std::string(value) == "1";
}

}  // namespace jagged::testing

// Skips the test (or fails it under JAGGED_REQUIRE_SHARED=1) when `path` does not exist.
#define JAGGED_REQUIRE_PATH(path)                                                                  \
  do {                                                                                             \
    if (!std::filesystem::exists(path)) {                                                          \
      if (::jagged::testing::shared_required()) FAIL() << "required test data missing: " << (path); \
      GTEST_SKIP() << "test data missing (set up ../shared to run this): " << (path);              \
    }                                                                                              \
  } while (0)
