// The golden end-to-end test: stories260K (a real pretrained Llama-architecture model) from BOS, greedy,
// 200 steps, must reproduce llama2.c's published output byte for byte.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "jagged/generate.h"
#include "jagged/llama.h"
#include "jagged/tokenizer.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

std::filesystem::path model_dir() { return testing::shared_dir() / "models" / "stories260K"; }

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(Stories260K, GreedyFromBosMatchesLlama2c) {
  JAGGED_REQUIRE_PATH(model_dir() / "stories260K.bin");
  const LlamaModel model = load_llama_model(model_dir() / "stories260K.bin");
  const auto tokenizer = load_tokenizer(model_dir() / "tok512.bin", model.config().vocab_size);
  GenerateOptions options;
  options.steps = 200;
  const std::vector<int32_t> generated = generate(model, {{model.config().bos_id}}, options)[0];
  ASSERT_EQ(generated.size(), 200u);
  std::string text;
  int32_t previous = model.config().bos_id;
  for (const int32_t id : generated) {
    text += tokenizer->decode_token(previous, id);
    previous = id;
  }
  EXPECT_EQ(text, read_file(model_dir() / "expected_greedy_200.txt"));
}

TEST(Stories260K, NestedBatchOfPromptsMatchesEachAlone) {
  JAGGED_REQUIRE_PATH(model_dir() / "stories260K.bin");
  const LlamaModel model = load_llama_model(model_dir() / "stories260K.bin");
  const auto tokenizer = load_tokenizer(model_dir() / "tok512.bin", model.config().vocab_size);
  const std::vector<std::string> prompts{"Once upon a time", "The cat", "", "Lily and Tom went to the park to play"};
  std::vector<std::vector<int32_t>> encoded;
  for (const auto& prompt : prompts) encoded.push_back(tokenizer->encode(prompt, true));
  GenerateOptions options;
  options.steps = 24;
  const auto together = generate(model, encoded, options);
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(generate(model, {encoded[i]}, options)[0], together[i]) << "prompt '" << prompts[i] << "'";
  }
}

}  // namespace
}  // namespace jagged
