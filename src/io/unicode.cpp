#include "io/unicode.h"

#include <algorithm>

#include "io/unicode_tables.h"

namespace jagged::io::unicode {
namespace {

namespace t = tables;

// Hangul syllables decompose and compose algorithmically (Unicode 15, section 3.12).
constexpr char32_t kHangulBase = 0xAC00, kLeadBase = 0x1100, kVowelBase = 0x1161, kTrailBase = 0x11A7;
constexpr char32_t kVowelCount = 21, kTrailCount = 28, kSyllableCount = 11172;
constexpr char32_t kPerLead = kVowelCount * kTrailCount;

uint8_t combining_class(char32_t code_point) {
  const t::CombiningClass* end = t::kCombiningClasses + t::kCombiningClassesSize;
  const t::CombiningClass* found = std::lower_bound(
      t::kCombiningClasses, end, code_point,
      [](const t::CombiningClass& entry, char32_t value) { return entry.code_point < value; });
  return found != end && found->code_point == code_point ? found->combining_class : 0;
}

void append_decomposition(std::u32string& out, char32_t code_point) {
  if (code_point >= kHangulBase && code_point < kHangulBase + kSyllableCount) {
    const char32_t index = code_point - kHangulBase;
    out.push_back(kLeadBase + index / kPerLead);
    out.push_back(kVowelBase + (index % kPerLead) / kTrailCount);
    if (index % kTrailCount != 0) out.push_back(kTrailBase + index % kTrailCount);
    return;
  }
  const t::Decomposition* end = t::kDecompositions + t::kDecompositionsSize;
  const t::Decomposition* found =
      std::lower_bound(t::kDecompositions, end, code_point,
                       [](const t::Decomposition& entry, char32_t value) { return entry.code_point < value; });
  if (found == end || found->code_point != code_point) {
    out.push_back(code_point);
    return;
  }
  out.append(t::kDecompositionData + found->offset, t::kDecompositionData + found->offset + found->length);
}

// The primary composite of (first, second), or 0 when they do not compose.
char32_t compose_pair(char32_t first, char32_t second) {
  if (first >= kLeadBase && first < kLeadBase + 19 && second >= kVowelBase && second < kVowelBase + kVowelCount) {
    return kHangulBase + ((first - kLeadBase) * kVowelCount + (second - kVowelBase)) * kTrailCount;
  }
  if (first >= kHangulBase && first < kHangulBase + kSyllableCount && (first - kHangulBase) % kTrailCount == 0 &&
      second > kTrailBase && second < kTrailBase + kTrailCount) {
    return first + (second - kTrailBase);
  }
  const t::Composition* end = t::kCompositions + t::kCompositionsSize;
  const t::Composition* found = std::lower_bound(
      t::kCompositions, end, std::pair<char32_t, char32_t>(first, second),
      [](const t::Composition& entry, const std::pair<char32_t, char32_t>& key) {
        return entry.first != key.first ? entry.first < key.first : entry.second < key.second;
      });
  return found != end && found->first == first && found->second == second ? found->composite : 0;
}

}  // namespace

Decoded decode_utf8(std::string_view text, size_t offset) {
  const auto byte = [&](size_t index) { return static_cast<uint8_t>(text[index]); };
  const uint8_t lead = byte(offset);
  if (lead < 0x80) return {lead, 1, true};
  size_t length = 0;
  char32_t code_point = 0;
  char32_t minimum = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2, code_point = lead & 0x1F, minimum = 0x80;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3, code_point = lead & 0x0F, minimum = 0x800;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4, code_point = lead & 0x07, minimum = 0x10000;
  } else {
    return {kReplacement, 1, false};
  }
  if (text.size() - offset < length) return {kReplacement, 1, false};
  for (size_t i = 1; i < length; ++i) {
    const uint8_t next = byte(offset + i);
    if ((next & 0xC0) != 0x80) return {kReplacement, 1, false};
    code_point = (code_point << 6) | (next & 0x3F);
  }
  if (code_point < minimum || code_point > 0x10FFFF || (code_point >= 0xD800 && code_point <= 0xDFFF)) {
    return {kReplacement, 1, false};
  }
  return {code_point, static_cast<uint32_t>(length), true};
}

void append_utf8(std::string& out, char32_t code_point) {
  if (code_point > 0x10FFFF || (code_point >= 0xD800 && code_point <= 0xDFFF)) code_point = kReplacement;
  if (code_point < 0x80) {
    out.push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else if (code_point < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (code_point >> 12)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (code_point >> 18)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
}

std::u32string to_code_points(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t offset = 0; offset < text.size();) {
    const Decoded decoded = decode_utf8(text, offset);
    out.push_back(decoded.code_point);
    offset += decoded.length;
  }
  return out;
}

std::string to_utf8(std::u32string_view code_points) {
  std::string out;
  out.reserve(code_points.size());
  for (const char32_t code_point : code_points) append_utf8(out, code_point);
  return out;
}

bool is_valid_utf8(std::string_view text) {
  for (size_t offset = 0; offset < text.size();) {
    const Decoded decoded = decode_utf8(text, offset);
    if (!decoded.valid) return false;
    offset += decoded.length;
  }
  return true;
}

Category category(char32_t code_point) {
  if (code_point > 0x10FFFF) return Category::Cn;
  const t::CategoryRange* end = t::kCategoryRanges + t::kCategoryRangesSize;
  const t::CategoryRange* found =
      std::upper_bound(t::kCategoryRanges, end, code_point,
                       [](char32_t value, const t::CategoryRange& entry) { return value < entry.first; });
  return static_cast<Category>((found - 1)->category);  // the first range starts at 0
}

bool is_letter(char32_t code_point) { return category(code_point) <= Category::Lo; }

bool is_number(char32_t code_point) {
  const Category c = category(code_point);
  return c >= Category::Nd && c <= Category::No;
}

bool is_whitespace(char32_t code_point) {
  return std::binary_search(t::kWhiteSpace, t::kWhiteSpace + t::kWhiteSpaceSize, static_cast<uint32_t>(code_point));
}

bool is_punctuation(char32_t code_point) {
  const Category c = category(code_point);
  return c >= Category::Pc && c <= Category::Po;
}

bool is_mark_nonspacing(char32_t code_point) { return category(code_point) == Category::Mn; }

bool is_other(char32_t code_point) { return category(code_point) >= Category::Cc; }

char32_t to_lower(char32_t code_point) {
  if (code_point < 0x80) return code_point >= 'A' && code_point <= 'Z' ? code_point + 32 : code_point;
  const t::CodePointPair* end = t::kLowercase + t::kLowercaseSize;
  const t::CodePointPair* found = std::lower_bound(
      t::kLowercase, end, code_point, [](const t::CodePointPair& entry, char32_t value) { return entry.from < value; });
  return found != end && found->from == code_point ? found->to : code_point;
}

std::u32string nfd(std::u32string_view code_points) {
  std::u32string out;
  out.reserve(code_points.size());
  for (const char32_t code_point : code_points) append_decomposition(out, code_point);
  // Canonical ordering: a stable sort of each run of non-starters by combining class.
  for (size_t begin = 0; begin < out.size();) {
    if (combining_class(out[begin]) == 0) {
      ++begin;
      continue;
    }
    size_t end = begin;
    while (end < out.size() && combining_class(out[end]) != 0) ++end;
    std::stable_sort(out.begin() + static_cast<std::ptrdiff_t>(begin), out.begin() + static_cast<std::ptrdiff_t>(end),
                     [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    begin = end;
  }
  return out;
}

std::u32string nfc(std::u32string_view code_points) {
  std::u32string text = nfd(code_points);
  if (text.empty()) return text;
  // Canonical composition (Unicode 15, D117): each character composes with the last starter unless a character
  // between them blocks it (same or higher combining class, or a starter).
  std::u32string out;
  out.reserve(text.size());
  size_t starter = std::u32string::npos;  // index in out of the last starter
  uint8_t last_class = 0;
  for (const char32_t code_point : text) {
    const uint8_t this_class = combining_class(code_point);
    if (starter != std::u32string::npos) {
      const bool blocked = out.size() - 1 != starter && (last_class == 0 || last_class >= this_class);
      if (!blocked) {
        const char32_t composite = compose_pair(out[starter], code_point);
        if (composite != 0) {
          out[starter] = composite;
          continue;
        }
      }
    }
    if (this_class == 0) starter = out.size();
    last_class = this_class;
    out.push_back(code_point);
  }
  return out;
}

}  // namespace jagged::io::unicode
