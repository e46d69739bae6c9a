// WordPiece (BERT): llama.cpp's bge-small reference cases (GGUF), the same vocabulary as vocab.txt and as a
// tokenizer.json, BERT's normalisation (accents, CJK, punctuation, controls), [CLS] ... [SEP], truncation,
// decoding, and bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "jagged/error.h"
#include "jagged/tokenizer.h"
#include "tokenizer_test_data.h"

namespace jagged {
namespace {

namespace fs = std::filesystem;

class WordPieceFiles : public testing::ScratchDirTest {
 protected:
  // A small uncased vocabulary.
  fs::path small_vocab() {
    return write_file("vocab.txt",
                 "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n,\n!\nun\n##aff\n##able\ncafe\n中\n##s\nthe\n.\n");
  }
};

TEST(WordPiece, GgufMatchesLlamaCppCases) {
  const fs::path gguf = testing::llama_vocab("bert-bge");
  JAGGED_REQUIRE_PATH(gguf);
  const Tokenizer* tokenizer = &testing::cached_tokenizer(gguf);
  EXPECT_EQ(tokenizer->kind(), "wordpiece");
  const auto cases = testing::read_vocab_cases(gguf);
  const int matched = testing::check_vocab_cases(*tokenizer, cases, "bert-bge");
  std::cout << "bert-bge: " << matched << "/" << cases.size() << " reference cases match\n";
}

TEST(WordPiece, GgufSpecialTokensAndDecoding) {
  const fs::path gguf = testing::llama_vocab("bert-bge");
  JAGGED_REQUIRE_PATH(gguf);
  const Tokenizer* tokenizer = &testing::cached_tokenizer(gguf);
  EXPECT_EQ(tokenizer->bos_id(), 101);
  EXPECT_EQ(tokenizer->eos_id(), 102);
  EXPECT_EQ(tokenizer->encode("Hello, world!", true), (std::vector<int32_t>{101, 7592, 1010, 2088, 999, 102}));
  EXPECT_EQ(tokenizer->encode("", true), (std::vector<int32_t>{101, 102}));
  EXPECT_EQ(tokenizer->encode("[CLS] hi [SEP]", false, true), (std::vector<int32_t>{101, 7632, 102}));
  EXPECT_EQ(tokenizer->decode(tokenizer->encode("Hello, world! Unaffable Äpfel.", true)),
            "hello, world! unaffable apfel.");
  EXPECT_EQ(tokenizer->decode({18133, 2361}), "cpp");  // "cp" "##p"
  EXPECT_EQ(tokenizer->decode_token(101, 7592), "hello");
  EXPECT_EQ(tokenizer->decode_token(7592, 2088), " world");
  EXPECT_EQ(tokenizer->decode_token(18133, 2361), "p");
  EXPECT_THROW(tokenizer->decode({30522}), InvalidArgument);
}

TEST_F(WordPieceFiles, VocabTxtAndTokenizerJsonOfTheGgufVocabularyAgree) {
  // bge-small's GGUF lists bert-base-uncased's vocabulary in id order (word starts with U+2581, continuations
  // bare); written back as vocab.txt ("##" continuations) and as a tokenizer.json it must tokenise the same.
  const fs::path gguf = testing::llama_vocab("bert-bge");
  JAGGED_REQUIRE_PATH(gguf);
  const auto from_gguf = load_tokenizer(gguf);
  std::string vocab_txt;
  nlohmann::json vocab = nlohmann::json::object();
  for (int32_t id = 0; id < from_gguf->vocab_size(); ++id) {
    std::string piece = from_gguf->piece(id);
    if (piece.rfind("\xE2\x96\x81", 0) == 0) piece = piece.substr(3);
    else if (piece.front() != '[') piece = "##" + piece;
    vocab_txt += piece + "\n";
    vocab[piece] = id;
  }
  const fs::path txt = write_file("vocab.txt", vocab_txt);
  nlohmann::json json = {
      {"added_tokens", nlohmann::json::array()},
      {"normalizer", {{"type", "BertNormalizer"}, {"lowercase", true}, {"strip_accents", nullptr}}},
      {"pre_tokenizer", {{"type", "BertPreTokenizer"}}},
      {"post_processor", {{"type", "BertProcessing"}, {"sep", {"[SEP]", 102}}, {"cls", {"[CLS]", 101}}}},
      {"decoder", {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}}},
      {"model", {{"type", "WordPiece"}, {"unk_token", "[UNK]"}, {"continuing_subword_prefix", "##"}, {"vocab", vocab}}}};
  const fs::path tokenizer_json = write_file("tokenizer.json", json.dump());
  const auto from_txt = load_tokenizer(txt);
  const auto from_json = load_tokenizer(tokenizer_json);
  const auto cases = testing::read_vocab_cases(gguf);
  testing::check_vocab_cases(*from_txt, cases, "vocab.txt");
  testing::check_vocab_cases(*from_json, cases, "tokenizer.json");
  for (const auto& c : cases) {
    EXPECT_EQ(from_txt->encode(c.text, true), from_gguf->encode(c.text, true));
    EXPECT_EQ(from_json->decode(c.ids), from_gguf->decode(c.ids));
  }
}

TEST_F(WordPieceFiles, BertNormalisationAndGreedyLongestMatch) {
  const auto tokenizer = load_tokenizer(small_vocab());
  // Lower-casing and accent stripping (uncased guessed from the vocabulary), punctuation split off.
  EXPECT_EQ(tokenizer->encode("Hello,WORLD!", false), (std::vector<int32_t>{5, 7, 6, 8}));
  EXPECT_EQ(tokenizer->encode("Café", false), (std::vector<int32_t>{12}));
  EXPECT_EQ(tokenizer->encode("unaffable", false), (std::vector<int32_t>{9, 10, 11}));
  // An unmatched rest makes the whole word [UNK]; so does a word over 100 characters.
  EXPECT_EQ(tokenizer->encode("unaffablex hello", false), (std::vector<int32_t>{1, 5}));
  EXPECT_EQ(tokenizer->encode(std::string(101, 'a'), false), (std::vector<int32_t>{1}));
  // CJK ideographs are words of their own; controls, U+FFFD and invalid bytes vanish; any whitespace splits.
  EXPECT_EQ(tokenizer->encode("中中", false), (std::vector<int32_t>{13, 13}));
  EXPECT_EQ(tokenizer->encode("hel\x01lo\xEF\xBF\xBD\xff\tworld\xE2\x80\x83the", false), (std::vector<int32_t>{5, 6, 15}));
  EXPECT_EQ(tokenizer->encode("", false), (std::vector<int32_t>{}));
  EXPECT_EQ(tokenizer->encode("hello", true), (std::vector<int32_t>{2, 5, 3}));
  EXPECT_EQ(tokenizer->decode({2, 5, 7, 6, 8, 9, 10, 11, 16, 3}), "hello, world! unaffable.");

  TokenizerOptions cased;
  cased.lowercase = false;
  EXPECT_EQ(load_tokenizer(small_vocab(), cased)->encode("Hello hello", false), (std::vector<int32_t>{1, 5}));
}

TEST_F(WordPieceFiles, TruncationKeepsClsAndSep) {
  TokenizerOptions options;
  options.max_length = 4;
  const auto tokenizer = load_tokenizer(small_vocab(), options);
  EXPECT_EQ(tokenizer->encode("hello world the hello", true), (std::vector<int32_t>{2, 5, 6, 3}));
  EXPECT_EQ(tokenizer->encode("hello world the hello", false), (std::vector<int32_t>{5, 6, 15, 5}));
  options.max_length = 1;
  EXPECT_EQ(load_tokenizer(small_vocab(), options)->encode("hello", true), (std::vector<int32_t>{3}));
  options.max_length = -1;
  EXPECT_THROW(load_tokenizer(small_vocab(), options), InvalidArgument);
}

TEST_F(WordPieceFiles, CasedVocabularyIsDetected) {
  const auto tokenizer = load_tokenizer(write_file("vocab.txt", "[UNK]\n[CLS]\n[SEP]\nHello\nhello\n"));
  EXPECT_EQ(tokenizer->encode("Hello hello", false), (std::vector<int32_t>{3, 4}));
  // tokenizer_config.json beside the vocabulary wins over the guess.
  write_file("tokenizer_config.json", R"({"do_lower_case": true})");
  EXPECT_EQ(load_tokenizer(directory_ / "vocab.txt")->encode("Hello hello", false), (std::vector<int32_t>{4, 4}));
}

TEST_F(WordPieceFiles, MalformedFilesNameTheFile) {
  const auto expect_file_error = [&](const fs::path& path, const std::string& needle) {
    SCOPED_TRACE(path.string());
    testing::expect_file_error([&] { load_tokenizer(path); }, {needle, path.string()});
  };
  expect_file_error(write_file("vocab.txt", "hello\nworld\n"), "[UNK]");
  expect_file_error(write_file("empty.txt", ""), "empty");
  expect_file_error(write_file("tokenizer.json", R"({"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}, )"
                                            R"("normalizer": {"type": "Lowercase"}})"),
                    "normalizer");
  expect_file_error(write_file("tokenizer.json", R"({"model": {"type": "WordPiece", "vocab": ["[UNK]"]}})"), "vocab");
}

}  // namespace
}  // namespace jagged
