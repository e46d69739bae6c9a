// Smoke tests of `jagged tokenize` / `jagged detokenize`: the built binary run on small tokenizers written here
// (and on llama.cpp's Llama 3 vocabulary when fetched), its output parsed back.
#include <filesystem>

#include "io/model_writers.h"
#include "io/tokenizer_test_data.h"
#include "testing/cli.h"

namespace jagged {
namespace {

namespace fs = std::filesystem;
using Result = testing::CliResult;

class TokenizeCli : public testing::CliTest {
 protected:
  // Runs the binary with `input` as its standard input.
  Result run_on(const std::string& arguments, const std::string& input) {
    return run(arguments, write_file("stdin.txt", input).string());
  }
};

TEST_F(TokenizeCli, WordPieceLinesRoundTrip) {
  const fs::path vocab = write_file("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\n!\n");
  const std::string source = concat("tokenize --tokenizer ", vocab.string());
  EXPECT_EQ(run_on(source, "Hello world!\n\nworld\n").out, "4 5 6\n\n5\n");
  EXPECT_EQ(run_on(source + " --special", "Hello world!\n[SEP]\n").out, "2 4 5 6 3\n2 3 3\n");
  EXPECT_EQ(run_on(source + " --json", "Hello world!\n").out, "[4,5,6]\n");
  const std::string back = concat("detokenize --tokenizer ", vocab.string());
  EXPECT_EQ(run_on(back, "2 4 5 6 3\n[4, 5]\n\n").out, "hello world!\nhello world\n\n");
  EXPECT_EQ(run_on(back + " --json", "4 5\n").out, "\"hello world\"\n");
}

TEST_F(TokenizeCli, Llama3VocabularyWithSpecialTokens) {
  const fs::path gguf = testing::llama_vocab("llama-bpe");
  JAGGED_REQUIRE_PATH(gguf);
  const std::string source = concat("tokenize -t ", gguf.string());
  EXPECT_EQ(run_on(source, "Hello world\n").out, "9906 1917\n");
  EXPECT_EQ(run_on(source + " --special", "<|begin_of_text|>Hello\n").out, "128000 128000 9906\n");
  EXPECT_EQ(run_on(concat("detokenize -t ", gguf.string()), "128000 9906 1917\n").out, "Hello world\n");
}

// A Hugging Face Llama directory (config.json, model.safetensors) with Mistral-7B's SentencePiece-converted
// tokenizer.json beside it: tokenize, detokenize and run find the tokenizer there.
TEST_F(TokenizeCli, HuggingFaceDirectoryWithSentencePieceTokenizerJson) {
  const fs::path reference = testing::tokenizer_data_dir() / "tokenizer-reference" / "mistral";
  JAGGED_REQUIRE_PATH(reference / "tokenizer.json");
  LlamaConfig config = testing::tiny_llama_config();
  config.vocab_size = 32000;
  config.model_dim = 32;  // attention wants head_dim a multiple of 8
  config.head_dim = 8;
  const fs::path model = directory_ / "tiny-mistral";
  fs::create_directories(model);
  testing::write_hf_llama(model, config, testing::random_llama_weights(config));
  fs::copy_file(reference / "tokenizer.json", model / "tokenizer.json");
  fs::copy_file(reference / "tokenizer_config.json", model / "tokenizer_config.json");
  const std::string dir = model.string();
  EXPECT_EQ(run_on(concat("tokenize --model ", dir), "Hello world\n").out, "22557 1526\n");
  EXPECT_EQ(run_on(concat("tokenize --model ", dir, " --special"), "<s>Hello world\n").out, "1 1 22557 1526\n");
  EXPECT_EQ(run_on(concat("detokenize --model ", dir), "1 22557 1526 28705 243 162 167 153\n").out,
            "Hello world \xF0\x9F\xA4\x96\n");
  const Result generated = run(concat("run --model ", dir, " -n 4 -p 'Hello world'"));
  ASSERT_EQ(generated.exit_code, 0) << generated.err;
  EXPECT_EQ(generated.out.rfind("Hello world", 0), 0u) << generated.out;
}

TEST_F(TokenizeCli, ErrorsExitWithAMessage) {
  const fs::path vocab = write_file("vocab.txt", "[UNK]\nhello\n");
  Result result = run_on(concat("detokenize --tokenizer ", vocab.string()), "1 7\n");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("token id 7 is outside the vocabulary"), std::string::npos) << result.err;
  result = run_on(concat("detokenize --tokenizer ", vocab.string()), "1 one\n");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("'one' is not a token id"), std::string::npos) << result.err;
  result = run_on(concat("tokenize --tokenizer ", (directory_ / "missing.json").string()), "x\n");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("missing.json"), std::string::npos) << result.err;
  EXPECT_EQ(run_on("tokenize", "x\n").exit_code, 1);  // neither --tokenizer nor --model
}

}  // namespace
}  // namespace jagged
