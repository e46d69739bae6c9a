// Seeded random weights for synthetic models: a counter-based generator, so every element depends only on
// (seed, tensor name, index): the same model whatever the thread count, and fast enough for 1B parameters.
#pragma once

#include <cstdint>
#include <string>

#include "jagged/tensor.h"

namespace jagged::models {

// A [shape] f32 tensor of values uniform in [center - half_width, center + half_width].
Tensor synthetic_tensor(const Shape& shape, uint64_t seed, const std::string& name, float center, float half_width);

// A weight matrix [out, in] scaled so activations keep their magnitude: uniform with std 1/sqrt(in).
Tensor synthetic_matrix(int64_t out_features, int64_t in_features, uint64_t seed, const std::string& name);

}  // namespace jagged::models
