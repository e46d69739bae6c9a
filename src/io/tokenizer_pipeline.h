// The tokenizer.json stages around a SentencePiece-converted BPE model (Llama 2, Mistral, TinyLlama, Gemma):
// normalizers, pre-tokenizers and decoders, each read from its JSON object as Hugging Face tokenizers defines
// it. A type or option jagged does not implement is refused by name (FileError naming the file), never
// approximated.
//
// Text stays bytes: invalid UTF-8 passes through every stage unchanged (Unicode normalizers leave such text as
// it is), and the ByteFallback decoder emits the raw bytes of <0xNN> pieces where Hugging Face writes U+FFFD for
// bytes that do not form UTF-8, so that decode(encode(bytes)) gives the bytes back.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace jagged::io {

// "normalizer": Prepend, Replace (String pattern), NFC, NFD, Lowercase, Strip, Sequence of these; null: none.
class Normalizer {
 public:
  static Normalizer from_json(const nlohmann::json& config, const std::filesystem::path& path);
  bool empty() const { return steps_.empty(); }
  // Normalizes one piece of text between added tokens (Prepend only touches non-empty text).
  void apply(std::string& text) const;

 private:
  enum class Type : uint8_t { prepend, replace, nfc, nfd, lowercase, strip };
  struct Step {
    Type type;
    std::string from;  // replace: the pattern
    std::string to;    // prepend / replace: the text to insert
    bool left = false;
    bool right = false;  // strip: which ends
  };
  void add(const nlohmann::json& config, const std::filesystem::path& path);
  std::vector<Step> steps_;
};

// "pre_tokenizer": Metaspace (replacement, prepend_scheme always / first / never or the older add_prefix_space,
// split), Split (String pattern, any behavior, invert), Sequence of these; null: the whole text is one word.
class MetaspacePreTokenizer {
 public:
  static MetaspacePreTokenizer from_json(const nlohmann::json& config, const std::filesystem::path& path);
  // Metaspace with replacement U+2581, prepend_scheme first, no split: what a non-legacy Llama tokenizer uses.
  static MetaspacePreTokenizer llama_first();
  // Appends the words of `text` (normalized) to `words`. `at_text_start`: the text begins the input, which
  // prepend_scheme "first" needs.
  void apply(std::string text, bool at_text_start, std::vector<std::string>& words) const;

 private:
  enum class Prepend : uint8_t { always, first, never };
  enum class Behavior : uint8_t { removed, isolated, merged_with_previous, merged_with_next, contiguous };
  struct Step {
    bool metaspace;  // else Split
    std::string pattern;  // Metaspace: the replacement; Split: the String pattern
    Prepend prepend = Prepend::always;
    bool split = true;  // Metaspace: split at each replacement (merged with the next word)
    Behavior behavior = Behavior::isolated;
    bool invert = false;
  };
  struct Word {
    std::string text;
    bool at_text_start;
  };
  void add(const nlohmann::json& config, const std::filesystem::path& path);
  static void split(const Word& word, std::string_view pattern, Behavior behavior, bool invert,
                    std::vector<Word>& out);
  std::vector<Step> steps_;
};

// "decoder": Replace (String pattern), ByteFallback, Fuse, Strip, Metaspace, Sequence of these. A null decoder
// joins the pieces with spaces, as Hugging Face does.
class PieceDecoder {
 public:
  static PieceDecoder from_json(const nlohmann::json& config, const std::filesystem::path& path);
  // The text of `pieces` (vocabulary strings). `at_start`: pieces[0] begins the output (Strip after Fuse and
  // Metaspace act there); `at_end`: the last piece ends it (Strip's stop after Fuse).
  std::string decode(std::vector<std::string> pieces, bool at_start, bool at_end) const;

 private:
  enum class Type : uint8_t { replace, byte_fallback, fuse, strip, metaspace };
  struct Step {
    Type type;
    std::string from;  // replace: pattern; strip: the character; metaspace: the replacement
    std::string to;
    int64_t start = 0;
    int64_t stop = 0;
    bool strip_first = true;  // metaspace: drop the leading space of the first piece (prepend_scheme != never)
  };
  void add(const nlohmann::json& config, const std::filesystem::path& path);
  std::vector<Step> steps_;
  bool null_ = false;
};

}  // namespace jagged::io
