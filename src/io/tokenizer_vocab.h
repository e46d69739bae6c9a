// What every tokenizer shares: the vocabulary (pieces, kinds, special ids), the added-token splitter that runs
// before pre-tokenisation, and a base class with the common Tokenizer accessors.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "jagged/tokenizer.h"

namespace jagged::io {

// Token kinds, numbered as GGUF's tokenizer.ggml.token_type (llama.cpp's llama_token_type).
enum class TokenKind : uint8_t { normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

// Hash for unordered maps keyed by std::string that are searched with std::string_view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};
using PieceMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct Vocabulary {
  std::vector<std::string> pieces;  // [vocab_size]
  std::vector<TokenKind> kinds;     // [vocab_size]
  PieceMap ids;                     // piece -> id; on duplicates the last id wins, as in llama.cpp
  int32_t bos = -1;
  int32_t eos = -1;
  int32_t unk = -1;
  bool add_bos = false;
  bool add_eos = false;

  int64_t size() const { return static_cast<int64_t>(pieces.size()); }
  // Builds `ids` from `pieces`; kinds default to normal.
  void index();
  int32_t find(std::string_view piece) const {
    const auto found = ids.find(piece);
    return found == ids.end() ? -1 : found->second;
  }
  // Skipped by decode: control and unknown tokens.
  bool is_special(int32_t id) const {
    return kinds[static_cast<size_t>(id)] == TokenKind::control || kinds[static_cast<size_t>(id)] == TokenKind::unknown;
  }
  // InvalidArgument naming `what` unless 0 <= id < size().
  void check_id(int32_t id, const char* what) const;
  // FileError naming `file` unless id is -1 or a valid id.
  void check_special_id(int32_t id, const char* what, const std::filesystem::path& file) const;
};

// A piece of the input after added tokens are split out: text to tokenise, or one token id.
struct Fragment {
  std::string_view text;
  int32_t token = -1;
};

// Finds added tokens in text, leftmost first, then longest (Hugging Face's added-vocabulary matching).
// Special ones are matched only when asked (parse_special); the others (user-defined) always. lstrip / rstrip
// take the spaces on that side into the token; a single_word token matches only between non-word characters.
class AddedTokens {
 public:
  void add(std::string content, int32_t id, bool special, bool lstrip = false, bool rstrip = false,
           bool single_word = false);
  bool empty() const { return entries_.empty(); }
  // Adds every control / unknown (special) and user-defined token of `vocab`.
  void add_from(const Vocabulary& vocab);
  std::vector<Fragment> split(std::string_view text, bool parse_special) const;

 private:
  struct Entry {
    std::string content;
    int32_t id;
    bool special;
    bool lstrip;
    bool rstrip;
    bool single_word;
  };
  std::vector<Entry> entries_;
  std::vector<std::vector<uint32_t>> by_first_byte_ = std::vector<std::vector<uint32_t>>(256);  // longest first
};

// The accessors all tokenizers share; subclasses fill vocab_ and added_.
class VocabTokenizer : public Tokenizer {
 public:
  std::string piece(int32_t id) const override;
  int64_t vocab_size() const override { return vocab_.size(); }
  int32_t bos_id() const override { return vocab_.bos; }
  int32_t eos_id() const override { return vocab_.eos; }
  int32_t piece_id(std::string_view piece) const override { return vocab_.find(piece); }

  void set_max_length(int64_t max_length) { max_length_ = max_length; }

 protected:
  // Cuts ids to max_length_, keeping the last id when `keep_last` (an appended [SEP] / EOS).
  void truncate(std::vector<int32_t>& ids, bool keep_last) const;

  Vocabulary vocab_;
  AddedTokens added_;
  int64_t max_length_ = 0;
};

// "<0xNN>" (SentencePiece's byte pieces) -> NN, or -1.
int parse_byte_piece(std::string_view piece);

// Replaces every occurrence of `from` (non-empty) in `text`.
void replace_all(std::string& text, std::string_view from, std::string_view to);

// Loaders (tokenizer_*.cpp); all throw FileError naming `path`.
class GgufFile;
std::unique_ptr<VocabTokenizer> load_sentencepiece_llama2c(const std::filesystem::path& path, int64_t vocab_size);
std::unique_ptr<VocabTokenizer> load_sentencepiece_gguf(const GgufFile& file);
std::unique_ptr<VocabTokenizer> load_bpe_gguf(const GgufFile& file);
std::unique_ptr<VocabTokenizer> load_wordpiece_gguf(const GgufFile& file, const TokenizerOptions& options);
std::unique_ptr<VocabTokenizer> load_wordpiece_vocab_txt(const std::filesystem::path& path,
                                                         const TokenizerOptions& options);
// From a parsed tokenizer.json; `path` names the file in errors (and locates tokenizer_config.json beside it).
// load_bpe_json reads byte-level files and hands the others to load_sentencepiece_bpe_json.
std::unique_ptr<VocabTokenizer> load_bpe_json(const nlohmann::json& root, const std::filesystem::path& path);
std::unique_ptr<VocabTokenizer> load_sentencepiece_bpe_json(const nlohmann::json& root,
                                                            const std::filesystem::path& path);
std::unique_ptr<VocabTokenizer> load_wordpiece_json(const nlohmann::json& root, const std::filesystem::path& path,
                                                    const TokenizerOptions& options);

// A SentencePiece vocabulary as GGUF's tokenizer.ggml.model "llama" stores it (spaces in normal pieces written
// U+2581, whatever the source wrote), for writing GGUF files; nullopt when `tokenizer` is of another kind.
struct SentencePieceVocab {
  Vocabulary vocab;
  std::vector<float> scores;  // [vocab_size]
  bool add_space_prefix = true;
};
std::optional<SentencePieceVocab> sentencepiece_vocab(const Tokenizer& tokenizer);

// GGUF helpers (tokenizer.cpp). The pieces (tokenizer.ggml.tokens), indexed, with their kinds from
// tokenizer.ggml.token_type when present (FileError naming the file when its length differs).
Vocabulary read_gguf_vocab(const GgufFile& file);
// A special token id, -1 when `key` is absent; clamped to [-1, INT32_MAX] (check_special_id rejects the rest).
int32_t read_gguf_token_id(const GgufFile& file, const std::string& key);
// BOS, EOS and unknown-token ids from tokenizer.ggml.{bos,eos,unknown}_token_id, each checked against the
// vocabulary (FileError naming `path`).
void read_gguf_special_ids(const GgufFile& file, const std::filesystem::path& path, Vocabulary& vocab);

// tokenizer.json helpers (tokenizer.cpp). The model's vocab object becomes pieces [0, max id]; added_tokens
// extend it (ids past the model vocabulary included) and are registered in `added`.
void read_json_vocab(const nlohmann::json& vocab_object, const nlohmann::json& root, const std::filesystem::path& path,
                     Vocabulary& vocab, AddedTokens& added);
// "a b" -> ("a", "b"): a merge as GGUF and older tokenizer.json files write it (FileError naming `path` and
// the rank when there is no space after the first character).
std::pair<std::string, std::string> split_merge(const std::string& merge, size_t rank,
                                                const std::filesystem::path& path);
// model.merges of a BPE tokenizer.json: "a b" strings or ["a", "b"] pairs, in rank order.
std::vector<std::pair<std::string, std::string>> read_json_merges(const nlohmann::json& model,
                                                                  const std::filesystem::path& path);
// tokenizer_config.json beside `path` as an object; an empty object when absent or not valid JSON.
nlohmann::json read_tokenizer_config(const std::filesystem::path& path);
// The id of a special token the post-processor adds first (BOS / [CLS]) and last (EOS / [SEP]); -1 when none.
struct PostProcessor {
  int32_t first = -1;
  int32_t last = -1;
};
PostProcessor read_json_post_processor(const nlohmann::json& root, const Vocabulary& vocab);

}  // namespace jagged::io
