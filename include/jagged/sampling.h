// Choosing the next token from logits, per request: greedy (temperature 0) or sampled with temperature, top-k,
// top-p, min-p and repetition / presence / frequency penalties, from the request's own seeded RNG (so a sampled
// sequence never depends on its neighbours in a batch).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

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

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0.0f;
};

class Sampler {
 public:
  // InvalidArgument naming the parameter for values outside their range (temperature < 0 or not finite, top_p
  // outside (0, 1], top_k < 0, min_p outside [0, 1], repetition_penalty <= 0, penalties not finite).
  explicit Sampler(const SamplingParams& params);
  // logits [vocab_size]; prompt and generated: the request's tokens so far (for the penalties). InvalidArgument
  // when a logit is NaN or infinite: such a row is never turned into a token.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> prompt = {},
                 std::span<const int32_t> generated = {});

 private:
  // probs: unnormalised, the largest 1; block_sums: ops::sampling_weights' sums of those >= min_p_floor()
  int32_t sample_unsorted(const std::vector<double>& probs, const std::vector<double>& block_sums);
  double min_p_floor() const { return params_.min_p > 0.0f ? static_cast<double>(params_.min_p) : 0.0; }
  SamplingParams params_;
  std::mt19937_64 rng_;
};

// Log-probabilities from the raw logits (log-softmax, before penalties and temperature, as OpenAI reports them):
// the chosen token's, and the top `k` tokens (most likely first; ties by lower id). logits [vocab_size].
TokenLogprob token_logprob(std::span<const float> logits, int32_t token);
std::vector<TokenLogprob> top_logprobs(std::span<const float> logits, int k);

}  // namespace jagged
