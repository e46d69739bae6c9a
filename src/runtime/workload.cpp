#include "jagged/workload.h"

#include <random>

namespace jagged {

const std::vector<int64_t>& study_lengths() {
  static const std::vector<int64_t> lengths{109, 63,  243, 13,  217, 16,  31,  187, 20,  28,  214,
                                            230, 113, 58,  173, 174, 198, 229, 48,  153, 189, 11,
                                            185, 44,  79,  32,  127, 244, 250, 50,  71,  161};
  return lengths;
}

std::vector<int64_t> uniform_lengths(int64_t batch, int64_t min_len, int64_t max_len, uint64_t seed) {
  if (batch <= 0) throw InvalidArgument(concat("batch must be positive, got ", batch));
  if (min_len < 0 || min_len > max_len) {
    throw InvalidArgument(concat("lengths need 0 <= min-len <= max-len, got min-len ", min_len, ", max-len ", max_len));
  }
  std::mt19937_64 rng(seed);
  const uint64_t span = static_cast<uint64_t>(max_len - min_len + 1);
  std::vector<int64_t> lengths(static_cast<size_t>(batch));
  for (auto& length : lengths) length = min_len + static_cast<int64_t>(rng() % span);
  return lengths;
}

NestedTensor random_token_batch(const std::vector<int64_t>& lengths, int64_t vocab_size, uint64_t seed) {
  if (vocab_size <= 0) throw InvalidArgument(concat("vocab_size must be positive, got ", vocab_size));
  NestedTensor batch = NestedTensor::from_lengths(lengths, {}, DType::i32);
  std::mt19937_64 rng(seed ^ 0x5eed);
  int32_t* ids = batch.values().data<int32_t>();
  for (int64_t t = 0; t < batch.num_tokens(); ++t) ids[t] = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab_size));
  return batch;
}

}  // namespace jagged
