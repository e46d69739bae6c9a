// Tokenizers: SentencePiece-style (score-based merges with byte fallback), byte-level BPE (GPT-2 / Llama 3 /
// Qwen2 pre-tokenizers), and WordPiece (BERT). Loaded from a llama2.c tokenizer .bin, a Hugging Face
// tokenizer.json, a vocab.txt, or the vocabulary embedded in a GGUF file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace jagged {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Token ids of `text`. With add_special, the model's BOS (decoders) or [CLS] ... [SEP] (encoders) are added
  // as the model files say.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special) const = 0;
  // Text of `ids`, special tokens skipped. Throws InvalidArgument on an id outside the vocabulary.
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  // The raw piece of one token as stored in the vocabulary (for debugging and streaming output).
  virtual std::string piece(int32_t id) const = 0;
  // Text of one token when it follows `previous` (streaming; SentencePiece drops the leading space after BOS).
  virtual std::string decode_token(int32_t previous, int32_t id) const = 0;

  virtual int64_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;  // -1 when the vocabulary has none
  virtual int32_t eos_id() const = 0;  // -1 when none
};

// Picks the format from the file: tokenizer.json, vocab.txt, *.gguf (by magic), llama2.c tokenizer .bin.
// For a llama2.c .bin, vocab_size must be given (the file does not record it); 0 reads to the end.
// Throws FileError naming the file and the problem.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& path, int64_t vocab_size = 0);

}  // namespace jagged
