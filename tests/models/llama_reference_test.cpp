// jagged's Llama forward against an independent one: a plain PyTorch implementation (float64) run by
// scripts/fixtures/make_llama_fixtures.py on the same weights, stored in three file formats.
#include <gtest/gtest.h>

#include <cfloat>
#include <fstream>

#include <nlohmann/json.hpp>

#include "jagged/generate.h"
#include "jagged/llama.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

const std::filesystem::path kFixtures = std::filesystem::path(JAGGED_SOURCE_DIR) / "tests" / "fixtures";

nlohmann::json read_reference(const std::string& model) {
  std::ifstream in(kFixtures / model / "reference.json");
  return nlohmann::json::parse(in);
}

NestedTensor token_batch(const nlohmann::json& sequences) {
  std::vector<int64_t> lengths;
  for (const auto& sequence : sequences) lengths.push_back(static_cast<int64_t>(sequence.size()));
  NestedTensor batch = NestedTensor::from_lengths(lengths, {}, DType::i32);
  int32_t* ids = batch.values().data<int32_t>();
  for (const auto& sequence : sequences) {
    for (const auto& id : sequence) *ids++ = id.get<int32_t>();
  }
  return batch;
}

// The reference is float64; a naive float32 forward errs by float32_reference_max_abs_diff. Allow 4x that
// (FlashAttention's oracle allows 2x a naive implementation) plus a few ulps of the largest logit.
double tolerance(const nlohmann::json& reference) {
  return 4.0 * reference["float32_reference_max_abs_diff"].get<double>() +
         8.0 * FLT_EPSILON * reference["max_abs_logit"].get<double>();
}

void expect_logits_match(const LlamaModel& model, const nlohmann::json& reference, BatchLayout layout) {
  const NestedTensor batch = token_batch(reference["sequences"]);
  const Tensor logits = model.forward(batch, {layout, false, nullptr});
  const int64_t vocab = model.config().vocab_size;
  ASSERT_EQ(logits.shape(), (Shape{batch.num_tokens(), vocab}));
  double worst = 0.0;
  int64_t row = 0;
  for (const auto& sequence_logits : reference["logits"]) {
    for (const auto& token_logits : sequence_logits) {
      for (int64_t v = 0; v < vocab; ++v) {
        worst = std::max(worst, std::fabs(logits.data<float>()[row * vocab + v] - token_logits[v].get<double>()));
      }
      ++row;
    }
  }
  EXPECT_EQ(row, batch.num_tokens());
  EXPECT_LE(worst, tolerance(reference));
}

class LlamaReference : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(LlamaReference, LogitsMatchPyTorch) {
  const auto& [model_dir, file] = GetParam();
  const std::filesystem::path path = kFixtures / model_dir / file;
  const nlohmann::json reference = read_reference(model_dir);
  const LlamaModel model = load_llama_model(path);
  EXPECT_EQ(model.config().num_kv_heads, reference["config"]["num_kv_heads"].get<int>());
  EXPECT_EQ(model.config().tied_output, reference["config"]["tied_output"].get<bool>());
  expect_logits_match(model, reference, BatchLayout::nested);
  expect_logits_match(model, reference, BatchLayout::padded);
}

TEST_P(LlamaReference, GreedyContinuationMatchesPyTorch) {
  const auto& [model_dir, file] = GetParam();
  const nlohmann::json reference = read_reference(model_dir);
  const LlamaModel model = load_llama_model(kFixtures / model_dir / file);
  GenerateOptions options;
  options.steps = reference["greedy"]["steps"].get<int>();
  options.stop_at_eos = false;
  const auto generated = generate(model, {reference["greedy"]["prompt"].get<std::vector<int32_t>>()}, options);
  EXPECT_EQ(generated[0], reference["greedy"]["tokens"].get<std::vector<int32_t>>());
}

TEST_P(LlamaReference, EmptySequencesYieldNoLogits) {
  const auto& [model_dir, file] = GetParam();
  const nlohmann::json reference = read_reference(model_dir);
  const LlamaModel model = load_llama_model(kFixtures / model_dir / file);
  const Tensor with_empty = model.forward(token_batch(reference["batch_with_empty"]["sequences"]));
  const Tensor without = model.forward(token_batch(reference["sequences"]));
  ASSERT_EQ(with_empty.shape(), without.shape());
  EXPECT_EQ(testing::max_abs_diff(with_empty.data<float>(), without.data<float>(), without.numel()), 0.0);
}

INSTANTIATE_TEST_SUITE_P(
    Formats, LlamaReference,
    ::testing::Values(std::pair{"llama-tiny", "model.bin"}, std::pair{"llama-tiny", "model.gguf"},
                      std::pair{"llama-tiny", ""}, std::pair{"llama-tiny-bf16", ""}, std::pair{"llama-tiny-qwen2", ""}),
    [](const auto& info) {
      std::string name = info.param.first + "_" + (info.param.second.empty() ? "safetensors" : info.param.second);
      for (char& ch : name) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
      return name;
    });

}  // namespace
}  // namespace jagged
