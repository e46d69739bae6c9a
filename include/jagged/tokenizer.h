// Tokenizers: SentencePiece-style (score-based merges with byte fallback from a llama2.c .bin or GGUF; rank-based
// merges from the tokenizer.json of a SentencePiece conversion such as Llama 2, Mistral, TinyLlama or Gemma),
// byte-level BPE (GPT-2 / Llama 3 / Qwen2 pre-tokenizers), and WordPiece (BERT). Loaded from a llama2.c tokenizer
// .bin, a Hugging Face tokenizer.json (with tokenizer_config.json beside it), a vocab.txt, or the vocabulary
// embedded in a GGUF file. tokenizer.json components jagged does not implement are refused by name.
//
// Text is UTF-8. Invalid UTF-8 never throws: each bad byte is one U+FFFD for classification. SentencePiece and
// byte-level BPE keep the original byte (byte fallback / byte-level tokens), so decode(encode(bytes)) gives the
// bytes back; WordPiece drops it, as BERT drops U+FFFD. Round trips are exact for byte-level BPE; SentencePiece
// decodes a U+2581 written in the text as a space (its own escape for spaces); WordPiece normalises.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jagged {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Token ids of `text`. With add_special, the model's BOS (decoders) or [CLS] ... [SEP] (encoders) are added
  // as the model files say. With parse_special, special tokens written in the text ("<|eot_id|>", "[SEP]")
  // become their ids; without it they are plain text. Added tokens that are not special (llama.cpp's
  // user-defined tokens) are always recognised, as Hugging Face and llama.cpp do.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special = false) const = 0;
  // Text of `ids`, special tokens skipped. Throws InvalidArgument on an id outside the vocabulary. The bytes are
  // what the tokens hold: ids that split a multi-byte character give invalid UTF-8 (where Hugging Face's
  // ByteFallback decoder writes U+FFFD). SentencePiece drops the
  // space its encoder prefixed (the leading space of the first piece).
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  // The raw piece of one token as stored in the vocabulary (for debugging and streaming output).
  virtual std::string piece(int32_t id) const = 0;
  // Text of one token when it follows `previous` (streaming; previous < 0 at the start). SentencePiece drops
  // the leading space after BOS or at the start, as llama2.c's run.c; WordPiece joins "##" continuations.
  virtual std::string decode_token(int32_t previous, int32_t id) const = 0;

  virtual int64_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;  // -1 when the vocabulary has none ([CLS] for WordPiece)
  virtual int32_t eos_id() const = 0;  // -1 when none ([SEP] for WordPiece)
  // The id of a piece exactly as stored ("<|im_end|>", "[MASK]"), or -1.
  virtual int32_t piece_id(std::string_view piece) const = 0;
  // "sentencepiece", "bpe" or "wordpiece".
  virtual std::string kind() const = 0;
};

struct TokenizerOptions {
  int64_t vocab_size = 0;              // llama2.c .bin: entries to read (the file does not record it); 0: to the end
  std::optional<bool> lowercase;       // WordPiece: overrides the file (or, for a bare vocab.txt, the guess)
  int64_t max_length = 0;              // encode() returns at most this many ids (0: no limit); [SEP] is kept
};

// Picks the format from the file: tokenizer.json, vocab.txt, *.gguf (by magic), llama2.c tokenizer .bin.
// For a llama2.c .bin, vocab_size must be given (the file does not record it); 0 reads to the end.
// Throws FileError naming the file and the problem.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& path, int64_t vocab_size = 0);
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& path, const TokenizerOptions& options);

}  // namespace jagged
