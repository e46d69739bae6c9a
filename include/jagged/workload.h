// Batches to measure on: sequence lengths from a named distribution, and token ids (random, or real text
// tokenised by a real tokenizer).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "jagged/nested_tensor.h"
#include "jagged/tokenizer.h"

namespace jagged {

// The study's workload: 32 lengths drawn uniformly from 10..256 with seed 555 (shared/workloads/study-32.txt).
const std::vector<int64_t>& study_lengths();

// `batch` lengths uniform in [min_len, max_len] (inclusive), reproducible from `seed`.
std::vector<int64_t> uniform_lengths(int64_t batch, int64_t min_len, int64_t max_len, uint64_t seed);

// A nested [num_tokens] i32 batch of random ids in [0, vocab_size) with these lengths.
NestedTensor random_token_batch(const std::vector<int64_t>& lengths, int64_t vocab_size, uint64_t seed);

// A named batch shape, as `jagged bench --dist` takes it:
//   study            the study's 32 lengths (batch, min_len, max_len ignored)
//   uniform          uniform in [min_len, max_len]
//   lognormal        long tail: median sqrt(min_len * max_len), sigma 0.75, clipped to [min_len, max_len]
//   equal            every sequence (min_len + max_len) / 2 long: nested must not lose to padded here
//   one-long         one sequence of max_len among batch - 1 of min_len
//   lengths:FILE     whitespace-separated lengths (a regular file)
//   corpus:FILE      real text: documents (separated by blank lines or '%' lines, as in fortune files)
//                    tokenised by `tokenizer`; a seeded run of `batch` consecutive documents of at least
//                    min_len tokens, each cut to max_len; the real token ids are kept (folded modulo
//                    vocab_size when the tokenizer's vocabulary is larger than the model's)
struct WorkloadSpec {
  std::string distribution = "study";
  int64_t batch = 32;
  int64_t min_len = 10;
  int64_t max_len = 256;
  uint64_t seed = 555;
  int64_t context_length = 0;  // > 0: every length must fit, checked before the batch is allocated
};

// Validates the spec (InvalidArgument / FileError with the reason) and draws the batch. Token ids are random
// in [0, vocab_size) except for corpus:, which needs a tokenizer.
NestedTensor draw_workload(const WorkloadSpec& spec, int64_t vocab_size, const Tokenizer* tokenizer = nullptr);

// Throws unless `distribution` is one of the names above (checked before any work starts).
void validate_distribution_name(const std::string& distribution);

}  // namespace jagged
