// Choosing the next token from logits: greedy (temperature 0) or sampled with temperature and top-p.
#pragma once

#include <cstdint>
#include <random>
#include <span>

namespace jagged {

struct SamplingParams {
  float temperature = 0.0f;         // 0: greedy (argmax, first index on ties)
  float top_p = 1.0f;               // nucleus: smallest set of tokens whose probability reaches top_p
  int top_k = 0;                    // keep the k most likely tokens; 0: all
  float min_p = 0.0f;               // drop tokens below min_p x the most likely one's probability
  float repetition_penalty = 1.0f;  // > 1 discourages tokens already in the prompt or output (CTRL / HF style)
  float presence_penalty = 0.0f;    // subtracted once from a token's logit if it was generated (OpenAI)
  float frequency_penalty = 0.0f;   // subtracted per occurrence in the generated tokens (OpenAI)
  uint64_t seed = 0;
};

// InvalidArgument naming the first NaN or infinite logit: a model whose numbers broke down (NaN or Inf weights,
// overflow) must stop with an error, never turn the broken row into a token.
void check_finite_logits(std::span<const float> logits);  // logits [vocab_size]

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);  // InvalidArgument on temperature < 0 or top_p outside (0, 1]
  int32_t sample(std::span<const float> logits);   // logits [vocab_size]

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
};

}  // namespace jagged
