// Smoke tests of `jagged tokenize` / `jagged detokenize`: the built binary run on small tokenizers written here
// (and on llama.cpp's Llama 3 vocabulary when fetched), its output parsed back.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "jagged/error.h"
#include "tokenizer_test_data.h"

namespace jagged {
namespace {

namespace fs = std::filesystem;

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class TokenizeCli : public ::testing::Test {
 protected:
  void SetUp() override {
    binary_ = fs::path(JAGGED_BINARY_DIR) / "jagged";
    ASSERT_TRUE(fs::exists(binary_)) << binary_ << " is missing: build the jagged_cli target first";
    const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / concat("jagged_tokenize_cli_", test->name(), "_", ::getpid());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& name, const std::string& content) {
    const fs::path path = dir_ / name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  Result run(const std::string& arguments, const std::string& input) {
    const fs::path in = write("stdin.txt", input);
    const std::string command = concat(binary_.string(), " ", arguments, " < ", in.string(), " > ",
                                       (dir_ / "out").string(), " 2> ", (dir_ / "err").string());
    const int status = std::system(command.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, testing::read_whole_file(dir_ / "out"),
            testing::read_whole_file(dir_ / "err")};
  }

  fs::path binary_;
  fs::path dir_;
};

TEST_F(TokenizeCli, WordPieceLinesRoundTrip) {
  const fs::path vocab = write("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\n!\n");
  const std::string source = concat("tokenize --tokenizer ", vocab.string());
  EXPECT_EQ(run(source, "Hello world!\n\nworld\n").out, "4 5 6\n\n5\n");
  EXPECT_EQ(run(source + " --special", "Hello world!\n[SEP]\n").out, "2 4 5 6 3\n2 3 3\n");
  EXPECT_EQ(run(source + " --json", "Hello world!\n").out, "[4,5,6]\n");
  const std::string back = concat("detokenize --tokenizer ", vocab.string());
  EXPECT_EQ(run(back, "2 4 5 6 3\n[4, 5]\n\n").out, "hello world!\nhello world\n\n");
  EXPECT_EQ(run(back + " --json", "4 5\n").out, "\"hello world\"\n");
}

TEST_F(TokenizeCli, Llama3VocabularyWithSpecialTokens) {
  const fs::path gguf = testing::llama_vocab("llama-bpe");
  JAGGED_REQUIRE_PATH(gguf);
  const std::string source = concat("tokenize -t ", gguf.string());
  EXPECT_EQ(run(source, "Hello world\n").out, "9906 1917\n");
  EXPECT_EQ(run(source + " --special", "<|begin_of_text|>Hello\n").out, "128000 128000 9906\n");
  EXPECT_EQ(run(concat("detokenize -t ", gguf.string()), "128000 9906 1917\n").out, "Hello world\n");
}

TEST_F(TokenizeCli, ErrorsExitWithAMessage) {
  const fs::path vocab = write("vocab.txt", "[UNK]\nhello\n");
  Result result = run(concat("detokenize --tokenizer ", vocab.string()), "1 7\n");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("token id 7 is outside the vocabulary"), std::string::npos) << result.err;
  result = run(concat("detokenize --tokenizer ", vocab.string()), "1 one\n");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("'one' is not a token id"), std::string::npos) << result.err;
  result = run(concat("tokenize --tokenizer ", (dir_ / "missing.json").string()), "x\n");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("missing.json"), std::string::npos) << result.err;
  EXPECT_EQ(run("tokenize", "x\n").exit_code, 1);  // neither --tokenizer nor --model
}

}  // namespace
}  // namespace jagged
