#include "io/tokenizer_pretokenize.h"

#include "io/unicode.h"

namespace jagged::io {
namespace {

// What the regexes ask of a code point. Exclusive: White_Space characters are neither letters nor numbers.
enum Class : uint8_t { kOther, kLetter, kNumber, kSpace, kEnd };

class CodePointText {
 public:
  explicit CodePointText(std::string_view text) {
    code_points_.reserve(text.size());
    offsets_.reserve(text.size() + 1);
    for (size_t offset = 0; offset < text.size();) {
      const unicode::Decoded decoded = unicode::decode_utf8(text, offset);
      const char32_t c = decoded.code_point;
      Class c_class = kOther;
      if (c < 0x80) {  // ASCII without table look-ups
        if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') c_class = kLetter;
        else if (c >= '0' && c <= '9') c_class = kNumber;
        else if (c == ' ' || (c >= '\t' && c <= '\r')) c_class = kSpace;
      } else if (unicode::is_whitespace(c)) {
        c_class = kSpace;
      } else if (unicode::is_letter(c)) {
        c_class = kLetter;
      } else if (unicode::is_number(c)) {
        c_class = kNumber;
      }
      code_points_.push_back(c);
      classes_.push_back(c_class);
      offsets_.push_back(static_cast<uint32_t>(offset));
      offset += decoded.length;
    }
    offsets_.push_back(static_cast<uint32_t>(text.size()));
  }

  size_t size() const { return code_points_.size(); }
  char32_t at(size_t i) const { return i < size() ? code_points_[i] : 0; }
  Class class_at(size_t i) const { return i < size() ? classes_[i] : kEnd; }
  uint32_t offset(size_t i) const { return offsets_[i]; }
  // End of the run of `c_class` starting at i.
  size_t run_end(size_t i, Class c_class) const {
    while (class_at(i) == c_class) ++i;
    return i;
  }

 private:
  std::vector<char32_t> code_points_;
  std::vector<Class> classes_;
  std::vector<uint32_t> offsets_;  // [size + 1]
};

char32_t ascii_lower(char32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

// 's 't 'm 'd (2 code points), 're 've 'll (3), or 0.
size_t contraction(const CodePointText& text, size_t i, bool ignore_case) {
  if (text.at(i) != '\'') return 0;
  const auto next = [&](size_t k) { return ignore_case ? ascii_lower(text.at(k)) : text.at(k); };
  const char32_t a = next(i + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  const char32_t b = next(i + 2);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// \s+(?!\S)|\s+ at a run of spaces [i, end): all of it at the end of the text or when it is one character,
// else all but the last (which then leads the next piece).
size_t trailing_space_end(const CodePointText& text, size_t i) {
  const size_t end = text.run_end(i, kSpace);
  return end == text.size() || end - i == 1 ? end : end - 1;
}

size_t gpt2_piece_end(const CodePointText& text, size_t i) {
  if (const size_t length = contraction(text, i, false)) return i + length;
  const size_t j = text.at(i) == ' ' ? i + 1 : i;  // " ?" before letters, numbers, symbols
  const Class c_class = text.class_at(j);
  if (c_class == kLetter || c_class == kNumber || c_class == kOther) return text.run_end(j, c_class);
  return trailing_space_end(text, i);
}

size_t llama3_piece_end(const CodePointText& text, size_t i, size_t max_digits) {
  if (const size_t length = contraction(text, i, true)) return i + length;
  const char32_t c = text.at(i);
  const Class c_class = text.class_at(i);
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (c_class == kLetter) return text.run_end(i, kLetter);
  if (c != '\r' && c != '\n' && c_class != kNumber && text.class_at(i + 1) == kLetter) {
    return text.run_end(i + 1, kLetter);
  }
  // \p{N}{1,max_digits}
  if (c_class == kNumber) {
    size_t end = i;
    while (end - i < max_digits && text.class_at(end) == kNumber) ++end;
    return end;
  }
  // " ?[^\s\p{L}\p{N}]+[\r\n]*"
  const size_t j = c == ' ' ? i + 1 : i;
  if (text.class_at(j) == kOther) {
    size_t end = text.run_end(j, kOther);
    while (text.at(end) == '\r' || text.at(end) == '\n') ++end;
    return end;
  }
  // \s*[\r\n]+ : the space run up to its last line break
  const size_t run_end = text.run_end(i, kSpace);
  for (size_t k = run_end; k > i; --k) {
    if (text.at(k - 1) == '\r' || text.at(k - 1) == '\n') return k;
  }
  return trailing_space_end(text, i);
}

}  // namespace

std::string_view pre_tokenizer_regex(PreTokenizer kind) {
  switch (kind) {
    case PreTokenizer::gpt2:
      return R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
    case PreTokenizer::llama3:
      return R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    case PreTokenizer::qwen2:
      return R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  }
  return {};
}

std::vector<std::pair<uint32_t, uint32_t>> pre_tokenize(std::string_view text, PreTokenizer kind) {
  const CodePointText code_points(text);
  std::vector<std::pair<uint32_t, uint32_t>> pieces;
  for (size_t i = 0; i < code_points.size();) {
    size_t end = 0;
    switch (kind) {
      case PreTokenizer::gpt2: end = gpt2_piece_end(code_points, i); break;
      case PreTokenizer::llama3: end = llama3_piece_end(code_points, i, 3); break;
      case PreTokenizer::qwen2: end = llama3_piece_end(code_points, i, 1); break;
    }
    if (end <= i) end = i + 1;  // cannot happen (the alternatives cover every character); never loop forever
    pieces.emplace_back(code_points.offset(i), code_points.offset(end));
    i = end;
  }
  return pieces;
}

}  // namespace jagged::io
