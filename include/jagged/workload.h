// Batches to measure on: sequence lengths from a named distribution, and random token ids.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "jagged/nested_tensor.h"

namespace jagged {

// The study's workload: 32 lengths drawn uniformly from 10..256 with seed 555 (shared/workloads/study-32.txt).
const std::vector<int64_t>& study_lengths();

// `batch` lengths uniform in [min_len, max_len] (inclusive), reproducible from `seed`.
std::vector<int64_t> uniform_lengths(int64_t batch, int64_t min_len, int64_t max_len, uint64_t seed);

// A nested [num_tokens] i32 batch of random ids in [0, vocab_size) with these lengths.
NestedTensor random_token_batch(const std::vector<int64_t>& lengths, int64_t vocab_size, uint64_t seed);

}  // namespace jagged
