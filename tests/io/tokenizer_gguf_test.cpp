// Tokenizers from GGUF vocabularies written by the test (vocabulary-only GGUF v3 files): each kind loads and
// encodes, and inconsistent metadata gives a FileError naming the file.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "jagged/error.h"
#include "jagged/tokenizer.h"
#include "tokenizer_test_data.h"

namespace jagged {
namespace {

namespace fs = std::filesystem;

// Metadata-only GGUF v3 (no tensors), enough for a tokenizer.
class GgufWriter {
 public:
  GgufWriter& string(const std::string& key, const std::string& value) {
    begin(key, 8);
    put_string(value);
    return *this;
  }
  GgufWriter& u32(const std::string& key, uint32_t value) {
    begin(key, 4);
    put(&value, 4);
    return *this;
  }
  GgufWriter& boolean(const std::string& key, bool value) {
    begin(key, 7);
    const uint8_t byte = value;
    put(&byte, 1);
    return *this;
  }
  GgufWriter& strings(const std::string& key, const std::vector<std::string>& values) {
    begin_array(key, 8, values.size());
    for (const auto& value : values) put_string(value);
    return *this;
  }
  GgufWriter& ints(const std::string& key, const std::vector<int32_t>& values) {
    begin_array(key, 5, values.size());
    for (const int32_t value : values) put(&value, 4);
    return *this;
  }
  GgufWriter& floats(const std::string& key, const std::vector<float>& values) {
    begin_array(key, 6, values.size());
    for (const float value : values) put(&value, 4);
    return *this;
  }
  std::string bytes() const {
    std::string header = "GGUF";
    const uint32_t version = 3;
    const uint64_t tensors = 0;
    header.append(reinterpret_cast<const char*>(&version), 4);
    header.append(reinterpret_cast<const char*>(&tensors), 8);
    header.append(reinterpret_cast<const char*>(&count_), 8);
    return header + body_;
  }

 private:
  void put(const void* data, size_t size) { body_.append(static_cast<const char*>(data), size); }
  void put_string(const std::string& text) {
    const uint64_t size = text.size();
    put(&size, 8);
    body_ += text;
  }
  void begin(const std::string& key, uint32_t type) {
    put_string(key);
    put(&type, 4);
    ++count_;
  }
  void begin_array(const std::string& key, uint32_t element_type, uint64_t size) {
    begin(key, 9);
    put(&element_type, 4);
    put(&size, 8);
  }

  std::string body_;
  uint64_t count_ = 0;
};

std::string byte_level(uint8_t byte) {  // GPT-2's bytes_to_unicode for one byte, as UTF-8
  const auto printable = [](uint32_t b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; };
  uint32_t code_point = byte;
  if (!printable(byte)) {
    code_point = 256;
    for (uint32_t b = 0; b < byte; ++b) code_point += !printable(b);
  }
  std::string out;
  if (code_point < 0x80) {
    out.push_back(static_cast<char>(code_point));
  } else {
    out.push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
  return out;
}

class GgufVocab : public testing::ScratchDirTest {
 protected:
  fs::path write(const GgufWriter& writer) { return write_file(concat("vocab", files_++, ".gguf"), writer.bytes()); }

  void expect_file_error(const GgufWriter& writer, const std::string& needle) {
    const fs::path path = write(writer);
    testing::expect_file_error([&] { load_tokenizer(path); }, {needle, path.string()});
  }

  // Byte-level characters of all 256 bytes, then "he", "ll", "hell", "hello" and a control token.
  static GgufWriter gpt2(const std::string& pre, const std::vector<std::string>& merges) {
    std::vector<std::string> tokens;
    for (int byte = 0; byte < 256; ++byte) tokens.push_back(byte_level(static_cast<uint8_t>(byte)));
    for (const char* token : {"he", "ll", "hell", "hello", "<|end|>"}) tokens.push_back(token);
    std::vector<int32_t> types(tokens.size(), 1);
    types.back() = 3;
    GgufWriter writer;
    writer.string("tokenizer.ggml.model", "gpt2").string("tokenizer.ggml.pre", pre).strings("tokenizer.ggml.tokens", tokens);
    writer.ints("tokenizer.ggml.token_type", types).strings("tokenizer.ggml.merges", merges);
    writer.u32("tokenizer.ggml.bos_token_id", 260).u32("tokenizer.ggml.eos_token_id", 260);
    return writer;
  }

  static GgufWriter llama(const std::vector<std::string>& extra, const std::vector<int32_t>& types_override = {}) {
    std::vector<std::string> tokens{"<unk>", "<s>", "</s>"};
    std::vector<int32_t> types{2, 3, 3};
    for (int byte = 0; byte < 256; ++byte) {
      tokens.push_back(concat("<0x", "0123456789ABCDEF"[byte / 16], "0123456789ABCDEF"[byte % 16], ">"));
      types.push_back(6);
    }
    for (const auto& piece : extra) {
      tokens.push_back(piece);
      types.push_back(1);
    }
    std::vector<float> scores;
    for (size_t i = 0; i < tokens.size(); ++i) scores.push_back(-static_cast<float>(i));
    GgufWriter writer;
    writer.string("tokenizer.ggml.model", "llama").strings("tokenizer.ggml.tokens", tokens);
    writer.floats("tokenizer.ggml.scores", scores).ints("tokenizer.ggml.token_type", types_override.empty() ? types : types_override);
    writer.u32("tokenizer.ggml.bos_token_id", 1).u32("tokenizer.ggml.eos_token_id", 2);
    return writer;
  }

  int files_ = 0;
};

TEST_F(GgufVocab, Gpt2StyleBpeLoadsAndMerges) {
  const auto tokenizer = load_tokenizer(write(gpt2("llama-bpe", {"h e", "l l", "he ll", "hell o"})));
  EXPECT_EQ(tokenizer->kind(), "bpe");
  EXPECT_EQ(tokenizer->encode("hello", false), (std::vector<int32_t>{259}));
  EXPECT_EQ(tokenizer->encode("hello", true), (std::vector<int32_t>{260, 259}));  // Llama 3 adds BOS by default
  EXPECT_EQ(tokenizer->encode("hello<|end|>", false, true), (std::vector<int32_t>{259, 260}));
  const auto gpt2_style = load_tokenizer(write(gpt2("gpt-2", {"h e"})));
  EXPECT_EQ(gpt2_style->encode("hello", true), (std::vector<int32_t>{256, 'l', 'l', 'o'}));  // byte b is id b
}

TEST_F(GgufVocab, SentencePieceLoadsWithAndWithoutSpacePrefix) {
  GgufWriter writer = llama({"\xE2\x96\x81", "a", "\xE2\x96\x81" "a"});
  const auto tokenizer = load_tokenizer(write(writer));
  EXPECT_EQ(tokenizer->kind(), "sentencepiece");
  EXPECT_EQ(tokenizer->encode("a a", true), (std::vector<int32_t>{1, 261, 261}));
  writer.boolean("tokenizer.ggml.add_space_prefix", false).boolean("tokenizer.ggml.add_bos_token", false);
  const auto no_prefix = load_tokenizer(write(writer));
  EXPECT_EQ(no_prefix->encode("a a", true), (std::vector<int32_t>{260, 261}));
  EXPECT_EQ(no_prefix->decode({260, 261}), "a a");
  EXPECT_EQ(no_prefix->decode_token(-1, 261), " a");  // no dummy prefix to drop
}

TEST_F(GgufVocab, WordPieceLoadsBothConventions) {
  GgufWriter marker;  // llama.cpp's: U+2581 starts a word, bare pieces continue one
  marker.string("tokenizer.ggml.model", "bert")
      .strings("tokenizer.ggml.tokens", {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "\xE2\x96\x81" "ab", "c", "\xE2\x96\x81" "c"})
      .ints("tokenizer.ggml.token_type", {3, 3, 3, 3, 1, 1, 1})
      .u32("tokenizer.ggml.unknown_token_id", 1).u32("tokenizer.ggml.cls_token_id", 2)
      .u32("tokenizer.ggml.seperator_token_id", 3);
  const auto tokenizer = load_tokenizer(write(marker));
  EXPECT_EQ(tokenizer->kind(), "wordpiece");
  EXPECT_EQ(tokenizer->encode("ABC c x", true), (std::vector<int32_t>{2, 4, 5, 6, 1, 3}));
  EXPECT_EQ(tokenizer->decode({2, 4, 5, 6, 1, 3}), "abc c");
  GgufWriter hashes;  // "##" continuations, as vocab.txt
  hashes.string("tokenizer.ggml.model", "bert").strings("tokenizer.ggml.tokens", {"[UNK]", "ab", "##c", "c"});
  EXPECT_EQ(load_tokenizer(write(hashes))->encode("abc c", false), (std::vector<int32_t>{1, 2, 3}));
}

TEST_F(GgufVocab, InconsistentMetadataNamesTheFile) {
  expect_file_error(gpt2("llama-bpe", {"h e", "h zz"}), "not in the vocabulary ('zz')");
  expect_file_error(gpt2("llama-bpe", {"hello"}), "not two tokens");
  expect_file_error(gpt2("jais-2000", {}), "tokenizer.ggml.pre 'jais-2000' is not supported");
  expect_file_error(llama({"a"}, {1, 2, 3}), "token_type has 3 entries");
  expect_file_error(llama({"a"}).u32("tokenizer.ggml.unknown_token_id", 9999), "outside the vocabulary");
  GgufWriter rwkv;
  rwkv.string("tokenizer.ggml.model", "rwkv").strings("tokenizer.ggml.tokens", {"a"});
  expect_file_error(rwkv, "'rwkv' is not supported");
  GgufWriter no_model;
  no_model.strings("tokenizer.ggml.tokens", {"a"});
  expect_file_error(no_model, "tokenizer.ggml.model");
  GgufWriter wrong_type;
  wrong_type.string("tokenizer.ggml.model", "llama").string("tokenizer.ggml.tokens", "a");
  expect_file_error(wrong_type, "tokenizer.ggml.tokens");
  GgufWriter no_unk;
  no_unk.string("tokenizer.ggml.model", "bert").strings("tokenizer.ggml.tokens", {"a", "##b"});
  expect_file_error(no_unk, "[UNK]");
  const std::string truncated = gpt2("gpt-2", {}).bytes();
  EXPECT_THROW(load_tokenizer(write_file("cut.gguf", truncated.substr(0, truncated.size() / 2))), FileError);
}

}  // namespace
}  // namespace jagged
