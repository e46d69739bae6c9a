#include "jagged/sampling.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/finite.h"
#include "jagged/error.h"
#include "jagged/ops.h"

namespace jagged {
namespace {

// A logits row that holds NaN or infinity comes from a broken model or input; never turn it into a token.
void check_logits(std::span<const float> logits, const char* what) {
  if (logits.empty()) throw InvalidArgument(concat(what, ": the logits row is empty"));
  const int64_t index = core::first_non_finite(logits);
  if (index < 0) return;
  throw InvalidArgument(concat(what, ": logit ", index, " of ", logits.size(), " is ", logits[static_cast<size_t>(index)],
                               " (not finite); the model produced NaN or infinity"));
}

void check_token_ids(std::span<const int32_t> tokens, size_t vocab_size, const char* which) {
  for (const int32_t token : tokens) {
    if (token < 0 || static_cast<size_t>(token) >= vocab_size) {
      throw InvalidArgument(concat("sample: ", which, " token ", token, " is outside the vocabulary [0, ",
                                   vocab_size, ")"));
    }
  }
}

// A uniform double in [0, 1) from the top 53 bits: the same on every standard library, unlike
// std::uniform_real_distribution, so a seed gives the same tokens everywhere.
double uniform_unit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// Index of the largest penalised score, the first one on ties (ops::argmax's rule, for doubles).
int32_t argmax(std::span<const double> values) {
  return static_cast<int32_t>(std::max_element(values.begin(), values.end()) - values.begin());
}

// HF / CTRL repetition penalty over the prompt and the output (each distinct token once), then OpenAI's presence
// and frequency penalties over the output. logits [vocab_size] double, changed in place.
void apply_penalties(const SamplingParams& params, std::span<const int32_t> prompt,
                     std::span<const int32_t> generated, std::vector<double>& logits) {
  if (params.repetition_penalty != 1.0f) {
    std::vector<int32_t> seen(prompt.begin(), prompt.end());
    seen.insert(seen.end(), generated.begin(), generated.end());
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    const double penalty = params.repetition_penalty;
    for (const int32_t token : seen) {
      double& logit = logits[token];
      logit = logit > 0.0 ? logit / penalty : logit * penalty;
    }
  }
  if (params.presence_penalty != 0.0f || params.frequency_penalty != 0.0f) {
    std::vector<int32_t> sorted(generated.begin(), generated.end());
    std::sort(sorted.begin(), sorted.end());
    for (size_t run = 0; run < sorted.size();) {
      size_t end = run;
      while (end < sorted.size() && sorted[end] == sorted[run]) ++end;
      logits[sorted[run]] -= params.presence_penalty + static_cast<double>(end - run) * params.frequency_penalty;
      run = end;
    }
  }
}

// A token and its probability, ordered most likely first, lower id first on ties: a strict order, so the kept set
// never depends on the sort's algorithm.
struct RankedToken {
  double prob;
  int32_t id;
  bool operator<(const RankedToken& other) const {
    return prob > other.prob || (prob == other.prob && id < other.id);
  }
};

// ranked[0, sorted) is in order and ahead of the rest; extends that to ranked[0, count). A few more entries: a
// partial sort (a small heap that rejects most tokens in one comparison); many: selected in linear time, then
// only they are sorted, so a prefix that grows in steps costs about one sort of it.
void extend_sorted(std::vector<RankedToken>& ranked, size_t sorted, size_t count) {
  const auto begin = ranked.begin() + static_cast<std::ptrdiff_t>(sorted);
  const auto middle = ranked.begin() + static_cast<std::ptrdiff_t>(count);
  if (count - sorted <= 256) return std::partial_sort(begin, middle, ranked.end());
  if (middle != ranked.end()) std::nth_element(begin, middle, ranked.end());
  std::sort(begin, middle);
}

// Sorts the tokens that top-p can keep to the front of `ranked` (whose probabilities are weights in [0, 1]) and
// returns how many: the weights' octaves [2^-(k+1), 2^-k), from the top, until their mass reaches `mass`. Only those
// are sorted (the rest stay behind them, unsorted), so a flat distribution that keeps thousands of tokens costs a
// sort of about those, not of the vocabulary. The walk that follows extends the sorted prefix if rounding left the
// octaves' sum above the walk's.
size_t sort_top_octaves(std::vector<RankedToken>& ranked, double mass) {
  constexpr int kOctaves = 64;  // the last one takes every smaller weight, 0 included
  std::array<double, kOctaves> octave_mass{};
  const auto octave = [](double prob) {  // 1023 - the biased exponent: 0 for 1, 1 for [0.5, 1), ...
    const auto biased = static_cast<int>((std::bit_cast<uint64_t>(prob) >> 52) & 0x7ff);
    return std::clamp(1023 - biased, 0, kOctaves - 1);
  };
  for (const RankedToken& token : ranked) octave_mass[static_cast<size_t>(octave(token.prob))] += token.prob;
  int last = 0;
  for (double cumulative = octave_mass[0]; cumulative < mass && last + 1 < kOctaves;) cumulative += octave_mass[++last];
  const auto end = std::partition(ranked.begin(), ranked.end(), [&](const RankedToken& token) { return octave(token.prob) <= last; });
  std::sort(ranked.begin(), end);
  return static_cast<size_t>(end - ranked.begin());
}

// log(sum(exp(logits))) in double, shifted by the largest logit so that nothing overflows.
double log_sum_exp(std::span<const float> logits) {
  const double max_logit = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (const float logit : logits) sum += std::exp(static_cast<double>(logit) - max_logit);
  return max_logit + std::log(sum);
}

}  // namespace

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {
  if (!(params.temperature >= 0.0f) || !std::isfinite(params.temperature)) {
    throw InvalidArgument(concat("temperature must be a finite number >= 0, got ", params.temperature));
  }
  if (!(params.top_p > 0.0f && params.top_p <= 1.0f)) {
    throw InvalidArgument(concat("top_p must be in (0, 1], got ", params.top_p));
  }
  if (params.top_k < 0) throw InvalidArgument(concat("top_k must be >= 0 (0: all tokens), got ", params.top_k));
  if (!(params.min_p >= 0.0f && params.min_p <= 1.0f)) {
    throw InvalidArgument(concat("min_p must be in [0, 1], got ", params.min_p));
  }
  if (!(params.repetition_penalty > 0.0f) || !std::isfinite(params.repetition_penalty)) {
    throw InvalidArgument(concat("repetition_penalty must be a finite number > 0 (1: none), got ",
                                 params.repetition_penalty));
  }
  if (!std::isfinite(params.presence_penalty)) {
    throw InvalidArgument(concat("presence_penalty must be finite, got ", params.presence_penalty));
  }
  if (!std::isfinite(params.frequency_penalty)) {
    throw InvalidArgument(concat("frequency_penalty must be finite, got ", params.frequency_penalty));
  }
}

// Penalties, then temperature, then the filters in vLLM's order: top-k, top-p over the renormalised top-k set,
// min-p against the most likely token. Each filter keeps a prefix of the tokens sorted by probability, so the
// kept set is the shortest of the three prefixes, and only that prefix is ever sorted.
// Without top-k or top-p the kept set needs no order (every token, or those min-p keeps): one draw over the
// probabilities in token order, no sort of the vocabulary (the OpenAI default, temperature 1, lands here).
int32_t Sampler::sample_unsorted(const std::vector<double>& probs, const std::vector<double>& block_sums) {
  const double floor = min_p_floor();
  const double mass = std::accumulate(block_sums.begin(), block_sums.end(), 0.0);
  const double target = uniform_unit(rng_) * mass;
  // The block the draw lands in (the cumulative mass of the blocks before it <= target < that plus its own),
  // then the token within it.
  double cumulative = 0.0;
  size_t block = 0;
  while (block + 1 < block_sums.size() && target >= cumulative + block_sums[block]) cumulative += block_sums[block++];
  const auto block_size = static_cast<size_t>(ops::sampling_weight_block());
  int32_t last = -1;
  for (size_t i = block * block_size; i < std::min(probs.size(), (block + 1) * block_size); ++i) {
    if (probs[i] < floor) continue;
    cumulative += probs[i];
    last = static_cast<int32_t>(i);
    if (target < cumulative) return last;
  }
  if (last >= 0) return last;  // rounding left target at the top of its block
  // ... or past every block: the last token kept (the most likely one has weight 1 >= any floor).
  for (size_t i = probs.size(); i-- > 0;) {
    if (probs[i] >= floor) return static_cast<int32_t>(i);
  }
  return 0;
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> prompt,
                        std::span<const int32_t> generated) {
  check_logits(logits, "sample");
  const size_t vocab_size = logits.size();
  check_token_ids(prompt, vocab_size, "prompt");
  check_token_ids(generated, vocab_size, "generated");
  const bool penalised = params_.repetition_penalty != 1.0f || params_.presence_penalty != 0.0f ||
                         params_.frequency_penalty != 0.0f;
  if (params_.temperature == 0.0f && !penalised) return ops::argmax(logits);

  std::vector<double> scores(logits.begin(), logits.end());  // [vocab_size] penalised logits, then probabilities
  if (penalised) apply_penalties(params_, prompt, generated, scores);
  if (params_.temperature == 0.0f) return argmax(std::span<const double>(scores));

  // Unnormalised probabilities: the most likely token has 1.
  const std::vector<double> block_sums = ops::sampling_weights(scores, params_.temperature, min_p_floor());
  const std::vector<double>& probs = scores;

  const bool top_k_cuts = params_.top_k > 0 && static_cast<size_t>(params_.top_k) < vocab_size;
  if (!top_k_cuts && params_.top_p >= 1.0f) return sample_unsorted(probs, block_sums);

  // min-p keeps every token with probability >= min_p x the largest (1 here): a prefix of known length.
  size_t limit = vocab_size;
  if (params_.min_p > 0.0f) {
    limit = static_cast<size_t>(std::count_if(probs.begin(), probs.end(), [&](double p) { return p >= params_.min_p; }));
  }

  std::vector<RankedToken> ranked(vocab_size);
  for (size_t i = 0; i < vocab_size; ++i) ranked[i] = {probs[i], static_cast<int32_t>(i)};

  // top-k: its mass is top-p's denominator.
  size_t sorted = 0;
  double top_p_total = 0.0;
  if (top_k_cuts) {
    sorted = static_cast<size_t>(params_.top_k);
    extend_sorted(ranked, 0, sorted);  // a partial sort: the few kept are cheaper to find than octaves
    for (size_t i = 0; i < sorted; ++i) top_p_total += ranked[i].prob;
    limit = std::min(limit, sorted);
  } else {
    // Every weight: the block sums when no min-p floor left some out of them.
    top_p_total = params_.min_p > 0.0f ? std::accumulate(probs.begin(), probs.end(), 0.0)
                                       : std::accumulate(block_sums.begin(), block_sums.end(), 0.0);
  }
  const double top_p_mass = static_cast<double>(params_.top_p) * top_p_total;
  if (!top_k_cuts) sorted = sort_top_octaves(ranked, top_p_mass);  // top-p is < 1 here

  // Walk the sorted prefix (sorting more only when needed) until top-p's mass or the limit is reached.
  size_t keep = 0;
  double kept_mass = 0.0;
  while (keep < limit && (keep == 0 || kept_mass < top_p_mass)) {
    if (keep == sorted) {
      const size_t more = std::min(vocab_size, std::max<size_t>(64, 4 * sorted));
      extend_sorted(ranked, sorted, more);
      sorted = more;
    }
    kept_mass += ranked[keep++].prob;
  }

  const double target = uniform_unit(rng_) * kept_mass;
  double cumulative = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    cumulative += ranked[i].prob;
    if (target < cumulative) return ranked[i].id;
  }
  return ranked[keep - 1].id;  // rounding left target at the very top
}

TokenLogprob token_logprob(std::span<const float> logits, int32_t token) {
  check_logits(logits, "token_logprob");
  if (token < 0 || static_cast<size_t>(token) >= logits.size()) {
    throw InvalidArgument(concat("token_logprob: token ", token, " is outside the vocabulary [0, ", logits.size(), ")"));
  }
  const double log_sum = log_sum_exp(logits);
  return {token, static_cast<float>(static_cast<double>(logits[token]) - log_sum)};
}

std::vector<TokenLogprob> top_logprobs(std::span<const float> logits, int k) {
  check_logits(logits, "top_logprobs");
  if (k < 0) throw InvalidArgument(concat("top_logprobs: k must be >= 0, got ", k));
  const size_t count = std::min(static_cast<size_t>(k), logits.size());
  const double log_sum = log_sum_exp(logits);

  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(count), ids.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  std::vector<TokenLogprob> top(count);
  for (size_t i = 0; i < count; ++i) {
    top[i] = {ids[i], static_cast<float>(static_cast<double>(logits[ids[i]]) - log_sum)};
  }
  return top;
}

}  // namespace jagged
