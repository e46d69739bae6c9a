// Unicode for the tokenizers: UTF-8 decoding that never fails, general categories, White_Space,
// lower-casing, canonical decomposition / composition (NFD, NFC). Tables: unicode_tables.cpp (generated).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace jagged::io::unicode {

// The Unicode general categories, in the generator's order (scripts/gen_unicode_tables.py).
enum class Category : uint8_t {
  Lu, Ll, Lt, Lm, Lo, Mn, Mc, Me, Nd, Nl, No, Pc, Pd, Ps, Pe, Pi,
  Pf, Po, Sm, Sc, Sk, So, Zs, Zl, Zp, Cc, Cf, Cs, Co, Cn,
};

inline constexpr char32_t kReplacement = 0xFFFD;

// One decoded code point. An invalid or truncated sequence decodes as U+FFFD of length 1 (one bad byte at a
// time), so every byte of any input belongs to exactly one code point and byte offsets stay exact.
struct Decoded {
  char32_t code_point;
  uint32_t length;  // bytes consumed, 1..4
  bool valid;
};
Decoded decode_utf8(std::string_view text, size_t offset);
void append_utf8(std::string& out, char32_t code_point);
std::u32string to_code_points(std::string_view text);  // invalid bytes become U+FFFD
std::string to_utf8(std::u32string_view code_points);
bool is_valid_utf8(std::string_view text);

Category category(char32_t code_point);
bool is_letter(char32_t code_point);       // \p{L}
bool is_number(char32_t code_point);       // \p{N}
bool is_whitespace(char32_t code_point);   // White_Space (what \s means in the tokenizers' regexes)
bool is_punctuation(char32_t code_point);  // \p{P}
bool is_mark_nonspacing(char32_t code_point);  // Mn: what BERT's accent stripping removes
bool is_other(char32_t code_point);        // Cc, Cf, Cs, Co, Cn: what BERT's clean-up removes

char32_t to_lower(char32_t code_point);  // simple (one to one) lower-case mapping

std::u32string nfd(std::u32string_view code_points);  // canonical decomposition + canonical ordering
std::u32string nfc(std::u32string_view code_points);  // nfd, then canonical composition

}  // namespace jagged::io::unicode
