// SentencePiece-style tokenizer: llama.cpp's Llama 2 reference cases (GGUF), llama-tokenizer-js's Llama 2 cases
// (with BOS), stories260K's llama2.c tok512.bin (round trips, run.c's decoding conventions), bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "jagged/error.h"
#include "jagged/tokenizer.h"
#include "tokenizer_test_data.h"

namespace jagged {
namespace {

namespace fs = std::filesystem;

fs::path tok512() { return testing::shared_dir() / "models" / "stories260K" / "tok512.bin"; }

// The cases llama-tokenizer-js checks (testCase("text", [ids...]) in llama-tokenizer.js): a JavaScript string
// literal and an array of ids, BOS included.
std::vector<testing::VocabCase> read_llama_tokenizer_js_cases(const fs::path& path) {
  const std::string source = testing::read_text(path);
  std::vector<testing::VocabCase> cases;
  for (size_t pos = source.find("testCase("); pos != std::string::npos; pos = source.find("testCase(", pos)) {
    pos += 9;
    while (pos < source.size() && std::isspace(static_cast<unsigned char>(source[pos]))) ++pos;
    if (pos >= source.size() || (source[pos] != '"' && source[pos] != '\'')) continue;  // the definition
    const char quote = source[pos++];
    testing::VocabCase c;
    while (pos < source.size() && source[pos] != quote) {
      char ch = source[pos++];
      if (ch == '\\' && pos < source.size()) {
        const char escaped = source[pos++];
        ch = escaped == 'n' ? '\n' : escaped == 't' ? '\t' : escaped == 'r' ? '\r' : escaped;
      }
      c.text.push_back(ch);
    }
    pos = source.find('[', pos);
    const size_t end = source.find(']', pos);
    std::istringstream numbers(source.substr(pos + 1, end - pos - 1));
    for (std::string number; std::getline(numbers, number, ',');) {
      if (number.find_first_of("0123456789") != std::string::npos) c.ids.push_back(std::stoi(number));
    }
    cases.push_back(std::move(c));
    pos = end;
  }
  return cases;
}

TEST(SentencePiece, GgufMatchesLlamaCppCases) {
  for (const char* name : {"llama-spm", "phi-3"}) {  // Llama 2, Phi-3 (Llama 2's vocabulary plus chat tokens)
    const fs::path gguf = testing::llama_vocab(name);
    JAGGED_REQUIRE_PATH(gguf);
    const Tokenizer* tokenizer = &testing::cached_tokenizer(gguf);
    EXPECT_EQ(tokenizer->kind(), "sentencepiece");
    const auto cases = testing::read_vocab_cases(gguf);
    const int matched = testing::check_vocab_cases(*tokenizer, cases, name);
    std::cout << name << ": " << matched << "/" << cases.size() << " reference cases match\n";
  }
}

TEST(SentencePiece, MatchesLlamaTokenizerJsCasesWithBos) {
  const fs::path gguf = testing::llama_vocab("llama-spm");
  const fs::path js = testing::tokenizer_data_dir() / "npm" / "llama-tokenizer-js" / "llama-tokenizer.js";
  JAGGED_REQUIRE_PATH(gguf);
  JAGGED_REQUIRE_PATH(js);
  const Tokenizer* tokenizer = &testing::cached_tokenizer(gguf);
  const auto cases = read_llama_tokenizer_js_cases(js);
  ASSERT_GE(cases.size(), 12u) << "the test file changed shape";
  for (const auto& c : cases) {
    const std::vector<int32_t> ids = tokenizer->encode(c.text, /*add_special=*/true);
    EXPECT_EQ(ids, c.ids) << "'" << c.text << "'";
    EXPECT_EQ(tokenizer->decode(ids), c.text);  // llama-tokenizer-js checks this too
  }
  std::cout << "llama-tokenizer-js: " << cases.size() << " cases checked\n";
}

TEST(SentencePiece, GgufRoundTripsAndSpecialTokens) {
  const fs::path gguf = testing::llama_vocab("llama-spm");
  JAGGED_REQUIRE_PATH(gguf);
  const Tokenizer* tokenizer = &testing::cached_tokenizer(gguf);
  for (const auto& c : testing::read_vocab_cases(gguf)) {
    EXPECT_EQ(tokenizer->decode(tokenizer->encode(c.text, false)), c.text) << "'" << c.text << "'";
    EXPECT_EQ(tokenizer->decode(tokenizer->encode(c.text, true)), c.text) << "'" << c.text << "'";
  }
  // Invalid UTF-8 goes through byte fallback and comes back unchanged.
  const std::string invalid = "bad \xff\xc3 bytes \xe2\x82";
  EXPECT_EQ(tokenizer->decode(tokenizer->encode(invalid, false)), invalid);
  EXPECT_EQ(tokenizer->encode("", true), (std::vector<int32_t>{1}));
  EXPECT_EQ(tokenizer->encode("", false), (std::vector<int32_t>{}));
  // "<s>" is text unless parse_special; after a special token the dummy prefix comes back (llama.cpp).
  EXPECT_EQ(tokenizer->encode("<s>Hello", false, true), (std::vector<int32_t>{1, 15043}));
  const std::vector<int32_t> plain = tokenizer->encode("<s>Hello", false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 1), 0);
  EXPECT_EQ(tokenizer->decode(plain), "<s>Hello");
  // A byte-fallback piece written in the text is text, not the byte.
  EXPECT_EQ(tokenizer->decode(tokenizer->encode("<0x0A>", false)), "<0x0A>");
  EXPECT_THROW(tokenizer->decode({32000}), InvalidArgument);
  EXPECT_THROW(tokenizer->decode_token(1, -2), InvalidArgument);
}

TEST(SentencePieceLlama2c, Tok512RoundTripsAndKeepsRunCConventions) {
  JAGGED_REQUIRE_PATH(tok512());
  const auto tokenizer = load_tokenizer(tok512(), 512);
  EXPECT_EQ(tokenizer->vocab_size(), 512);
  EXPECT_EQ(tokenizer->bos_id(), 1);
  EXPECT_EQ(tokenizer->eos_id(), 2);
  EXPECT_EQ(load_tokenizer(tok512())->vocab_size(), 512);  // 0: read to the end
  for (const std::string text : {"Once upon a time, there was a little girl named Lily.",
                                 "Lily's mom said, \"Lily, let's go to the park.\"", "  two leading spaces",
                                 "tabs\tand\nnew lines", "ünïcödé 🦙 falls back to bytes", ""}) {
    const std::vector<int32_t> ids = tokenizer->encode(text, true);
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids[0], 1);
    EXPECT_EQ(tokenizer->decode(ids), text);
    EXPECT_EQ(tokenizer->decode(tokenizer->encode(text, false)), text);
    for (const int32_t id : ids) EXPECT_LT(id, 512);
  }
  // run.c's streaming: the first piece after BOS loses its leading space, later ones keep it.
  const std::vector<int32_t> ids = tokenizer->encode("Once upon a time", true);
  std::string streamed;
  for (size_t i = 1; i < ids.size(); ++i) streamed += tokenizer->decode_token(ids[i - 1], ids[i]);
  EXPECT_EQ(streamed, "Once upon a time");
  EXPECT_EQ(tokenizer->decode_token(ids[1], ids[2]).front(), ' ');
  // llama2.c's export writes BOS as "\n<s>\n"; the piece reads <s> and decodes to nothing.
  EXPECT_EQ(tokenizer->piece(1), "<s>");
  EXPECT_EQ(tokenizer->decode_token(-1, 1), "");
  EXPECT_EQ(tokenizer->decode({1, 2}), "");
}

TEST(SentencePieceLlama2c, Tok512MatchesTheGoldenTextConventions) {
  // expected_greedy_200.txt is model output decoded as run.c does; re-encoding it with BOS and decoding the ids
  // one by one must give it back byte for byte.
  const fs::path golden = testing::shared_dir() / "models" / "stories260K" / "expected_greedy_200.txt";
  JAGGED_REQUIRE_PATH(tok512());
  JAGGED_REQUIRE_PATH(golden);
  const auto tokenizer = load_tokenizer(tok512(), 512);
  const std::string text = testing::read_text(golden);
  const std::vector<int32_t> ids = tokenizer->encode(text, true);
  std::string streamed;
  for (size_t i = 1; i < ids.size(); ++i) streamed += tokenizer->decode_token(ids[i - 1], ids[i]);
  EXPECT_EQ(streamed, text);
  EXPECT_EQ(tokenizer->decode(ids), text);
}

class Llama2cFile : public testing::ScratchDirTest {
 protected:
  // A llama2.c tokenizer: <unk>, "\n<s>\n", "\n</s>\n", 256 byte pieces, then `pieces` with descending scores.
  fs::path write(const std::vector<std::string>& pieces, size_t cut = 0) {
    std::string bytes;
    const auto put = [&](const void* data, size_t size) { bytes.append(static_cast<const char*>(data), size); };
    const int32_t max_length = 16;
    put(&max_length, 4);
    std::vector<std::string> all{"<unk>", "\n<s>\n", "\n</s>\n"};
    for (int byte = 0; byte < 256; ++byte) all.push_back(concat("<0x", "0123456789ABCDEF"[byte / 16], "0123456789ABCDEF"[byte % 16], ">"));
    all.insert(all.end(), pieces.begin(), pieces.end());
    for (size_t i = 0; i < all.size(); ++i) {
      const float score = i < 259 ? 0.0f : -static_cast<float>(i);
      const auto length = static_cast<int32_t>(all[i].size());
      put(&score, 4);
      put(&length, 4);
      put(all[i].data(), all[i].size());
    }
    bytes.resize(bytes.size() - cut);
    return write_file("tok.bin", bytes);
  }
};

TEST_F(Llama2cFile, MergesByScoreWithByteFallback) {
  // Scores fall with the id: " a" (259) beats "ab" (261), so " ab" is reached through " a" + "b".
  const fs::path path = write({" a", "b", "ab", " ab", "a", " ", "c"});
  const auto tokenizer = load_tokenizer(path);
  EXPECT_EQ(tokenizer->vocab_size(), 266);
  EXPECT_EQ(tokenizer->encode("ab", true), (std::vector<int32_t>{1, 262}));
  EXPECT_EQ(tokenizer->encode("abc", false), (std::vector<int32_t>{262, 265}));
  EXPECT_EQ(tokenizer->encode("a\xC3\xA9", false), (std::vector<int32_t>{259, 3 + 0xC3, 3 + 0xA9}));  // é: bytes
  EXPECT_EQ(tokenizer->decode({1, 262, 3 + 0xC3, 3 + 0xA9}), "ab\xC3\xA9");
}

TEST_F(Llama2cFile, TruncatedOrMalformedFilesNameTheFile) {
  const auto expect_file_error = [&](const fs::path& path, int64_t vocab_size, const std::string& needle) {
    testing::expect_file_error([&] { load_tokenizer(path, vocab_size); }, {needle, path.string()});
  };
  expect_file_error(write({"ab"}, 1), 0, "truncated");
  expect_file_error(write({"ab"}, 5), 0, "truncated");
  expect_file_error(write({"ab"}), 300, "truncated");  // asks for more tokens than the file holds
  expect_file_error(write_file("bad.bin", std::string("\xff\xff\xff\xff", 4)), 0, "max_token_length");
  expect_file_error(write_file("empty.bin", ""), 0, "truncated");
  EXPECT_THROW(load_tokenizer(write({"ab"}), -1), InvalidArgument);
}

}  // namespace
}  // namespace jagged
