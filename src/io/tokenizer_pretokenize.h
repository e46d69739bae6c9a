// The byte-level BPE pre-tokenizers, hand-written from their regexes (no regex library handles \p{L} with
// look-ahead portably). Each walks the code points once and behaves as the regex under leftmost-first
// alternation (Oniguruma / fancy-regex, which Hugging Face uses), \s being White_Space:
//   gpt2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   llama3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|
//           \s+(?!\S)|\s+
//   qwen2:  llama3 with \p{N} (one digit per piece) for \p{N}{1,3}
// The (?i:...) contractions match ASCII letters of either case.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace jagged::io {

enum class PreTokenizer : uint8_t { gpt2, llama3, qwen2 };

// The regex source each pre-tokenizer implements, as tokenizer.json writes it.
std::string_view pre_tokenizer_regex(PreTokenizer kind);

// Byte ranges [begin, end) of the pieces of `text`, in order, covering all of it. Invalid UTF-8 bytes count as
// U+FFFD (a symbol: neither letter, number nor space).
std::vector<std::pair<uint32_t, uint32_t>> pre_tokenize(std::string_view text, PreTokenizer kind);

}  // namespace jagged::io
