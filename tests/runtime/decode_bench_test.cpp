#include "jagged/decode_bench.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "jagged/error.h"

namespace jagged {
namespace {

LlamaConfig tiny_config() { return LlamaModel::synthetic("tiny").config(); }

TEST(DecodeBench, WorkloadIsReproducibleAndWithinItsRanges) {
  DecodeBenchOptions options;
  options.min_prompt = 10;
  options.max_prompt = 40;
  options.min_new = 16;
  options.max_new = 30;
  const LlamaConfig config = tiny_config();
  const DecodeWorkload workload = draw_decode_workload(config, options, 20);
  ASSERT_EQ(workload.prompts.size(), 20u);
  ASSERT_EQ(workload.new_tokens.size(), 20u);
  for (size_t i = 0; i < 20; ++i) {
    EXPECT_GE(workload.prompts[i].size(), 10u);
    EXPECT_LE(workload.prompts[i].size(), 40u);
    for (const int32_t id : workload.prompts[i]) EXPECT_TRUE(id >= 0 && id < config.vocab_size);
    EXPECT_GE(workload.new_tokens[i], 16);
    EXPECT_LE(workload.new_tokens[i], 30);
    EXPECT_EQ(workload.arrival_s[i], 0.0);  // no rate: all at once
  }
  EXPECT_EQ(draw_decode_workload(config, options, 20).prompts, workload.prompts);
  options.seed += 1;
  EXPECT_NE(draw_decode_workload(config, options, 20).prompts, workload.prompts);

  options.rate = 50.0;  // Poisson arrivals: increasing, mean gap 1/50 s
  const DecodeWorkload arriving = draw_decode_workload(config, options, 400);
  EXPECT_TRUE(std::is_sorted(arriving.arrival_s.begin(), arriving.arrival_s.end()));
  EXPECT_NEAR(arriving.arrival_s.back() / 399.0, 1.0 / 50.0, 0.25 / 50.0);
}

TEST(DecodeBench, PaddedStaticBatchPadsPromptsAndOutputsToTheLongest) {
  DecodeBenchOptions options;
  options.min_prompt = 5;
  options.max_prompt = 60;
  const DecodeWorkload workload = draw_decode_workload(tiny_config(), options, 7);
  const DecodeWorkload padded = padded_static_workload(workload, 256, 3);
  size_t longest_prompt = 0;
  for (const auto& prompt : workload.prompts) longest_prompt = std::max(longest_prompt, prompt.size());
  const int64_t longest_output = *std::max_element(workload.new_tokens.begin(), workload.new_tokens.end());
  for (size_t i = 0; i < 7; ++i) {
    ASSERT_EQ(padded.prompts[i].size(), longest_prompt);
    EXPECT_TRUE(std::equal(workload.prompts[i].begin(), workload.prompts[i].end(), padded.prompts[i].begin()));
    EXPECT_EQ(padded.new_tokens[i], longest_output);
    EXPECT_EQ(padded.arrival_s[i], 0.0);
  }
}

TEST(DecodeBench, RejectsWorkloadsThatCannotRun) {
  const LlamaConfig config = tiny_config();  // context 512
  DecodeBenchOptions options;
  options.max_prompt = 300;
  options.max_new = 300;
  EXPECT_THROW(draw_decode_workload(config, options, 1), InvalidArgument);
  options = {};
  options.concurrency = {8, 0};
  EXPECT_THROW(draw_decode_workload(config, options, 1), InvalidArgument);
  options = {};
  options.min_new = 0;
  EXPECT_THROW(draw_decode_workload(config, options, 1), InvalidArgument);
  options = {};
  options.rate = -2.0;
  EXPECT_THROW(draw_decode_workload(config, options, 1), InvalidArgument);
  EXPECT_THROW(draw_decode_workload(config, {}, 0), InvalidArgument);
}

}  // namespace
}  // namespace jagged
