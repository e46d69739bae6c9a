// Choosing the next token from logits: greedy (temperature 0) or sampled with temperature and top-p.
#pragma once

#include <cstdint>
#include <random>
#include <span>

namespace jagged {

struct SamplingParams {
  float temperature = 0.0f;  // 0: greedy (argmax, first index on ties)
  float top_p = 1.0f;        // nucleus: smallest set of tokens whose probability reaches top_p
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);  // InvalidArgument on temperature < 0 or top_p outside (0, 1]
  int32_t sample(std::span<const float> logits);   // logits [vocab_size]

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
};

}  // namespace jagged
