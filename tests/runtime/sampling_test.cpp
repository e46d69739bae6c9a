#include "jagged/sampling.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <vector>

#include "jagged/error.h"

namespace jagged {
namespace {

std::vector<float> random_logits(size_t vocab_size, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> logits(vocab_size);
  for (float& logit : logits) logit = normal(rng);
  return logits;
}

// The plain reference: penalties as the papers state them, a full softmax, a full sort, then top-k, top-p over
// the renormalised top-k set and min-p against the most likely token. Returns the probability of every token.
std::vector<double> reference_distribution(const SamplingParams& params, const std::vector<float>& logits,
                                           const std::vector<int32_t>& prompt, const std::vector<int32_t>& generated) {
  const size_t vocab_size = logits.size();
  std::vector<double> adjusted(logits.begin(), logits.end());
  for (size_t token = 0; token < vocab_size; ++token) {
    const bool in_prompt = std::count(prompt.begin(), prompt.end(), token) > 0;
    const auto count = std::count(generated.begin(), generated.end(), token);
    if (in_prompt || count > 0) {
      adjusted[token] = adjusted[token] > 0 ? adjusted[token] / params.repetition_penalty
                                            : adjusted[token] * params.repetition_penalty;
    }
    if (count > 0) adjusted[token] -= params.presence_penalty + count * params.frequency_penalty;
  }
  std::vector<double> probs(vocab_size);
  const double max_logit = *std::max_element(adjusted.begin(), adjusted.end());
  for (size_t i = 0; i < vocab_size; ++i) probs[i] = std::exp((adjusted[i] - max_logit) / params.temperature);
  const double total = std::accumulate(probs.begin(), probs.end(), 0.0);
  for (double& p : probs) p /= total;

  std::vector<size_t> order(vocab_size);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return probs[a] > probs[b]; });
  std::vector<bool> kept(vocab_size, true);
  const size_t top_k = params.top_k > 0 ? std::min<size_t>(params.top_k, vocab_size) : vocab_size;
  double top_k_mass = 0.0;
  for (size_t rank = 0; rank < vocab_size; ++rank) {
    if (rank >= top_k) kept[order[rank]] = false;
    else top_k_mass += probs[order[rank]];
  }
  double cumulative = 0.0;
  for (size_t rank = 0; rank < top_k; ++rank) {
    if (rank > 0 && cumulative >= params.top_p) kept[order[rank]] = false;
    cumulative += probs[order[rank]] / top_k_mass;
  }
  const double max_prob = probs[order[0]];
  for (size_t i = 0; i < vocab_size; ++i) {
    if (probs[i] < params.min_p * max_prob) kept[i] = false;
  }
  double kept_mass = 0.0;
  for (size_t i = 0; i < vocab_size; ++i) kept_mass += kept[i] ? probs[i] : 0.0;
  for (size_t i = 0; i < vocab_size; ++i) probs[i] = kept[i] ? probs[i] / kept_mass : 0.0;
  return probs;
}

// Draws `draws` tokens and checks them against the reference: never a token the reference drops, and Pearson's
// chi-square over the kept tokens (those expected fewer than 5 times lumped into one bin) within 6 standard
// deviations of its mean.
void expect_matches_reference(const SamplingParams& params, const std::vector<float>& logits,
                              const std::vector<int32_t>& prompt = {}, const std::vector<int32_t>& generated = {}) {
  constexpr int draws = 10000;
  const std::vector<double> expected = reference_distribution(params, logits, prompt, generated);
  Sampler sampler(params);
  std::vector<int64_t> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) ++counts[sampler.sample(logits, prompt, generated)];

  double chi_square = 0.0;
  int bins = 0;
  double lumped_expected = 0.0;
  int64_t lumped_observed = 0;
  for (size_t token = 0; token < logits.size(); ++token) {
    if (expected[token] == 0.0) {
      EXPECT_EQ(counts[token], 0) << "token " << token << " is filtered out but was sampled";
      continue;
    }
    const double mean = expected[token] * draws;
    if (mean < 5.0) {
      lumped_expected += mean;
      lumped_observed += counts[token];
      continue;
    }
    chi_square += (counts[token] - mean) * (counts[token] - mean) / mean;
    ++bins;
  }
  if (lumped_expected > 0.0) {
    chi_square += (lumped_observed - lumped_expected) * (lumped_observed - lumped_expected) / lumped_expected;
    ++bins;
  }
  const double dof = std::max(1, bins - 1);
  EXPECT_LT(chi_square, dof + 6.0 * std::sqrt(2.0 * dof)) << "over " << bins << " bins";
}

TEST(Sampler, GreedyTakesTheFirstLargest) {
  Sampler sampler({});
  const std::vector<float> logits{0.5f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(sampler.sample(logits), 1);
}

TEST(Sampler, TopKOneIsGreedy) {
  Sampler sampler({.temperature = 1.5f, .top_k = 1, .seed = 3});
  for (uint64_t seed = 0; seed < 50; ++seed) {
    const std::vector<float> logits = random_logits(300, seed);
    const auto greedy = std::max_element(logits.begin(), logits.end()) - logits.begin();
    EXPECT_EQ(sampler.sample(logits), greedy);
  }
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingTheMass) {
  const std::vector<float> logits{0.0f, std::log(3.0f)};  // p = 0.25, 0.75
  Sampler nucleus({.temperature = 1.0f, .top_p = 0.5f, .seed = 42});  // keeps only the 0.75 token
  for (int i = 0; i < 200; ++i) EXPECT_EQ(nucleus.sample(logits), 1);
  Sampler both({.temperature = 1.0f, .top_p = 0.8f, .seed = 42});  // 0.75 < 0.8: both tokens
  int ones = 0;
  for (int i = 0; i < 4000; ++i) ones += both.sample(logits);
  EXPECT_NEAR(ones / 4000.0, 0.75, 0.03);  // > 4 standard deviations
}

TEST(Sampler, MinPDropsTokensBelowTheFractionOfTheLargest) {
  // Probabilities relative to the largest: 1, 0.5, 0.2, 0.09; min_p 0.1 drops the last one only.
  const std::vector<float> logits{0.0f, std::log(0.5f), std::log(0.2f), std::log(0.09f)};
  Sampler sampler({.temperature = 1.0f, .min_p = 0.1f, .seed = 5});
  std::vector<int> counts(4, 0);
  for (int i = 0; i < 3000; ++i) ++counts[sampler.sample(logits)];
  EXPECT_EQ(counts[3], 0);
  EXPECT_GT(counts[2], 0);
  EXPECT_GT(counts[1], counts[2]);
  EXPECT_GT(counts[0], counts[1]);
}

TEST(Sampler, SampledDistributionMatchesTheFilteredSoftmax) {
  // 1000 tokens: four of the sampler's blocks of weights, and top-p sorting past a partial sort.
  const std::vector<float> logits = random_logits(1000, 11, 1.5f);
  struct Case {
    const char* name;
    SamplingParams params;
  };
  const std::vector<Case> cases{
      {"temperature", {.temperature = 1.0f, .seed = 1}},
      {"hot", {.temperature = 2.0f, .seed = 2}},
      {"cold", {.temperature = 0.5f, .seed = 3}},
      {"top_k", {.temperature = 1.0f, .top_k = 20, .seed = 4}},
      {"top_p_wide", {.temperature = 1.0f, .top_p = 0.97f, .seed = 5}},  // keeps more than the first sorted 64
      {"top_p_narrow", {.temperature = 0.8f, .top_p = 0.6f, .seed = 6}},
      {"min_p", {.temperature = 1.0f, .min_p = 0.05f, .seed = 7}},
      {"all_filters", {.temperature = 1.2f, .top_p = 0.9f, .top_k = 40, .min_p = 0.02f, .seed = 8}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    expect_matches_reference(c.params, logits);
  }
}

TEST(Sampler, PenalisedDistributionMatchesTheReference) {
  const std::vector<float> logits = random_logits(40, 12);
  const std::vector<int32_t> prompt{1, 2, 3, 3, 17};
  const std::vector<int32_t> generated{3, 5, 5, 5, 22, 30};
  expect_matches_reference({.temperature = 1.0f, .repetition_penalty = 1.3f, .seed = 1}, logits, prompt, generated);
  expect_matches_reference({.temperature = 1.0f, .presence_penalty = 0.7f, .frequency_penalty = 0.4f, .seed = 2},
                           logits, prompt, generated);
  expect_matches_reference({.temperature = 0.7f, .top_k = 10, .repetition_penalty = 1.2f, .presence_penalty = -0.5f,
                            .frequency_penalty = 0.3f, .seed = 3},
                           logits, prompt, generated);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  const SamplingParams params{.repetition_penalty = 1.2f};
  // 2.0 / 1.2 = 1.67 < 1.8: the repeated token loses its lead.
  EXPECT_EQ(Sampler(params).sample(std::vector<float>{2.0f, 1.8f, -1.0f}, std::vector<int32_t>{0}), 1);
  EXPECT_EQ(Sampler({}).sample(std::vector<float>{2.0f, 1.8f, -1.0f}, std::vector<int32_t>{0}), 0);
  // -0.5 x 1.2 = -0.6 < -0.55: a negative logit is pushed further down, not up.
  EXPECT_EQ(Sampler(params).sample(std::vector<float>{-0.5f, -0.55f}, {}, std::vector<int32_t>{0}), 1);
  // Each distinct token is penalised once however often it appears: 2.0 / 1.2 = 1.67 > 1.5 (three times: 1.16).
  EXPECT_EQ(Sampler(params).sample(std::vector<float>{2.0f, 1.5f}, std::vector<int32_t>{0}, std::vector<int32_t>{0, 0}),
            0);
}

TEST(Sampler, PresenceAndFrequencyPenaltiesCountOnlyGeneratedTokens) {
  const std::vector<float> logits{1.0f, 0.7f};
  const SamplingParams presence{.presence_penalty = 0.5f};  // 1.0 - 0.5 = 0.5 < 0.7
  EXPECT_EQ(Sampler(presence).sample(logits, {}, std::vector<int32_t>{0}), 1);
  EXPECT_EQ(Sampler(presence).sample(logits, std::vector<int32_t>{0}, {}), 0);  // the prompt does not count
  // Binary fractions, so that the ties below are exact.
  const std::vector<float> halves{1.0f, 0.5f};
  const SamplingParams frequency{.frequency_penalty = 0.25f};
  EXPECT_EQ(Sampler(frequency).sample(halves, {}, std::vector<int32_t>{0}), 0);           // 0.75 > 0.5
  EXPECT_EQ(Sampler(frequency).sample(halves, {}, std::vector<int32_t>{0, 0, 0}), 1);     // 0.25 < 0.5
  EXPECT_EQ(Sampler(frequency).sample(halves, {}, std::vector<int32_t>{0, 0}), 0);        // 0.5 = 0.5: lower id
  EXPECT_EQ(Sampler(frequency).sample(halves, {}, std::vector<int32_t>{0, 1, 0, 0}), 0);  // 0.25 = 0.25
  EXPECT_EQ(Sampler(frequency).sample(halves, {}, std::vector<int32_t>{0, 1, 0, 0, 0}), 1);  // 0 < 0.25
}

TEST(Sampler, SameSeedSameTokensAndSeedsAreIndependent) {
  const std::vector<float> logits = random_logits(50, 21);
  const SamplingParams params{.temperature = 1.0f, .top_p = 0.95f, .seed = 1234};
  Sampler first(params);
  Sampler second(params);
  Sampler neighbour({.temperature = 1.0f, .seed = 99});
  std::vector<int32_t> tokens_first;
  std::vector<int32_t> tokens_second;
  for (int i = 0; i < 500; ++i) {
    tokens_first.push_back(first.sample(logits));
    neighbour.sample(logits);  // interleaved draws from another request do not disturb this one
    tokens_second.push_back(second.sample(logits));
  }
  EXPECT_EQ(tokens_first, tokens_second);

  // Two seeds on a fair coin: their draws are not equal, and a 2x2 contingency chi-square finds no dependence.
  const std::vector<float> coin{0.0f, 0.0f};
  Sampler a({.temperature = 1.0f, .seed = 1});
  Sampler b({.temperature = 1.0f, .seed = 2});
  constexpr int draws = 20000;
  double table[2][2] = {{0, 0}, {0, 0}};
  int equal = 0;
  for (int i = 0; i < draws; ++i) {
    const int32_t x = a.sample(coin);
    const int32_t y = b.sample(coin);
    table[x][y] += 1;
    equal += x == y;
  }
  EXPECT_LT(equal, draws * 0.55);
  EXPECT_GT(equal, draws * 0.45);
  double chi_square = 0.0;
  for (int x = 0; x < 2; ++x) {
    for (int y = 0; y < 2; ++y) {
      const double expected = (table[x][0] + table[x][1]) * (table[0][y] + table[1][y]) / draws;
      chi_square += (table[x][y] - expected) * (table[x][y] - expected) / expected;
    }
  }
  EXPECT_LT(chi_square, 20.0);  // 1 degree of freedom: p < 1e-5 above 20
}

TEST(Sampler, RejectsBadParameters) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_THROW(Sampler({.temperature = -1.0f}), InvalidArgument);
  EXPECT_THROW(Sampler({.temperature = nan}), InvalidArgument);
  EXPECT_THROW(Sampler({.temperature = inf}), InvalidArgument);
  EXPECT_THROW(Sampler({.top_p = 0.0f}), InvalidArgument);
  EXPECT_THROW(Sampler({.top_p = 1.5f}), InvalidArgument);
  EXPECT_THROW(Sampler({.top_p = nan}), InvalidArgument);
  EXPECT_THROW(Sampler({.top_k = -1}), InvalidArgument);
  EXPECT_THROW(Sampler({.min_p = -0.1f}), InvalidArgument);
  EXPECT_THROW(Sampler({.min_p = 1.1f}), InvalidArgument);
  EXPECT_THROW(Sampler({.min_p = nan}), InvalidArgument);
  EXPECT_THROW(Sampler({.repetition_penalty = 0.0f}), InvalidArgument);
  EXPECT_THROW(Sampler({.repetition_penalty = -1.0f}), InvalidArgument);
  EXPECT_THROW(Sampler({.repetition_penalty = inf}), InvalidArgument);
  EXPECT_THROW(Sampler({.presence_penalty = nan}), InvalidArgument);
  EXPECT_THROW(Sampler({.frequency_penalty = -inf}), InvalidArgument);
  EXPECT_NO_THROW(Sampler({.temperature = 0.7f, .top_p = 1.0f, .top_k = 5, .min_p = 1.0f, .repetition_penalty = 0.5f,
                           .presence_penalty = -2.0f, .frequency_penalty = 2.0f}));

  Sampler sampler({});
  EXPECT_THROW(sampler.sample({}), InvalidArgument);
  const std::vector<float> logits{0.1f, 0.2f};
  EXPECT_THROW(sampler.sample(logits, std::vector<int32_t>{2}), InvalidArgument);       // prompt id out of range
  EXPECT_THROW(sampler.sample(logits, {}, std::vector<int32_t>{-1}), InvalidArgument);  // generated id out of range
}

TEST(Sampler, NonFiniteLogitsThrow) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (const float bad : {nan, inf, -inf}) {
    const std::vector<float> logits{0.1f, bad, 0.3f};
    EXPECT_THROW(Sampler({}).sample(logits), InvalidArgument);
    EXPECT_THROW(Sampler({.temperature = 1.0f}).sample(logits), InvalidArgument);
    EXPECT_THROW(Sampler({.repetition_penalty = 1.1f}).sample(logits, std::vector<int32_t>{0}), InvalidArgument);
    EXPECT_THROW(token_logprob(logits, 0), InvalidArgument);
    EXPECT_THROW(top_logprobs(logits, 2), InvalidArgument);
  }
}

TEST(Logprobs, AreALogSoftmaxThatSumsToOne) {
  const std::vector<float> logits = random_logits(500, 31, 3.0f);
  double total = 0.0;
  for (int32_t token = 0; token < 500; ++token) {
    const TokenLogprob logprob = token_logprob(logits, token);
    EXPECT_EQ(logprob.token, token);
    EXPECT_LE(logprob.logprob, 0.0f);
    total += std::exp(static_cast<double>(logprob.logprob));
  }
  EXPECT_NEAR(total, 1.0, 1e-5);
  // By hand: logits {0, log 3} are probabilities 0.25 and 0.75, even shifted far from zero.
  const std::vector<float> shifted{1000.0f, 1000.0f + std::log(3.0f)};
  EXPECT_NEAR(token_logprob(shifted, 0).logprob, std::log(0.25), 1e-4);
  EXPECT_NEAR(token_logprob(shifted, 1).logprob, std::log(0.75), 1e-4);
  EXPECT_THROW(token_logprob(shifted, 2), InvalidArgument);
  EXPECT_THROW(token_logprob(shifted, -1), InvalidArgument);

  const std::vector<TokenLogprob> all = top_logprobs(logits, 500);
  ASSERT_EQ(all.size(), 500u);
  double top_total = 0.0;
  for (const TokenLogprob& entry : all) {
    top_total += std::exp(static_cast<double>(entry.logprob));
    EXPECT_EQ(entry.logprob, token_logprob(logits, entry.token).logprob);
  }
  EXPECT_NEAR(top_total, 1.0, 1e-5);
}

TEST(Logprobs, TopLogprobsAreMostLikelyFirstWithTiesByLowerId) {
  const std::vector<float> logits{0.5f, 2.0f, -1.0f, 2.0f, 0.5f, 3.0f};
  const std::vector<TokenLogprob> top = top_logprobs(logits, 4);
  ASSERT_EQ(top.size(), 4u);
  const std::vector<int32_t> expected_ids{5, 1, 3, 0};
  for (size_t i = 0; i < top.size(); ++i) EXPECT_EQ(top[i].token, expected_ids[i]) << i;
  EXPECT_GT(top[0].logprob, top[1].logprob);
  EXPECT_EQ(top[1].logprob, top[2].logprob);
  EXPECT_GT(top[2].logprob, top[3].logprob);
  EXPECT_TRUE(top_logprobs(logits, 0).empty());
  EXPECT_EQ(top_logprobs(logits, 100).size(), logits.size());  // k beyond the vocabulary: every token
  EXPECT_THROW(top_logprobs(logits, -1), InvalidArgument);
  EXPECT_THROW(top_logprobs({}, 1), InvalidArgument);
}

}  // namespace
}  // namespace jagged
