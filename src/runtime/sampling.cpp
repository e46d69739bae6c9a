#include "jagged/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "jagged/error.h"

namespace jagged {

void check_finite_logits(std::span<const float> logits) {
  const auto bad = std::find_if(logits.begin(), logits.end(), [](float logit) { return !std::isfinite(logit); });
  if (bad == logits.end()) return;
  throw InvalidArgument(concat("the model produced a non-finite logit (", *bad, " for token ", bad - logits.begin(),
                               "): its weights or activations overflowed; no token can be chosen"));
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {
  if (!(params.temperature >= 0.0f) || !std::isfinite(params.temperature)) {
    throw InvalidArgument(concat("temperature must be a finite number >= 0, got ", params.temperature));
  }
  if (!(params.top_p > 0.0f && params.top_p <= 1.0f)) {
    throw InvalidArgument(concat("top_p must be in (0, 1], got ", params.top_p));
  }
}

int32_t Sampler::sample(std::span<const float> logits) {
  if (logits.empty()) throw InvalidArgument("cannot sample from an empty logits row");
  check_finite_logits(logits);
  if (params_.temperature == 0.0f) {
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  std::vector<double> probs(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) probs[i] = std::exp((logits[i] - max_logit) / params_.temperature);
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return probs[a] > probs[b]; });
  const double total = std::accumulate(probs.begin(), probs.end(), 0.0);
  // Keep the most likely tokens until their mass reaches top_p.
  size_t keep = 0;
  double mass = 0.0;
  while (keep < order.size() && (keep == 0 || mass < params_.top_p * total)) mass += probs[order[keep++]];
  std::uniform_real_distribution<double> uniform(0.0, mass);
  double target = uniform(rng_);
  for (size_t i = 0; i < keep; ++i) {
    target -= probs[order[i]];
    if (target <= 0.0) return order[i];
  }
  return order[keep - 1];
}

}  // namespace jagged
