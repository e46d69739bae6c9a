// The Unicode Character Database tables the tokenizers need, generated into unicode_tables.cpp by
// scripts/gen_unicode_tables.py. Use them through io/unicode.h.
#pragma once

#include <cstddef>
#include <cstdint>

namespace jagged::io::unicode::tables {

struct CategoryRange {
  uint32_t first;    // first code point of a run with one general category
  uint8_t category;  // index into unicode::Category
};
struct CodePointPair {
  uint32_t from;
  uint32_t to;
};
struct Decomposition {
  uint32_t code_point;
  uint16_t offset;  // into kDecompositionData
  uint8_t length;   // full (recursive) canonical decomposition
};
struct CombiningClass {
  uint32_t code_point;
  uint8_t combining_class;  // only non-zero classes are listed
};
struct Composition {
  uint32_t first;
  uint32_t second;
  uint32_t composite;
};

extern const CategoryRange kCategoryRanges[];
extern const size_t kCategoryRangesSize;
extern const uint32_t kWhiteSpace[];
extern const size_t kWhiteSpaceSize;
extern const CodePointPair kLowercase[];
extern const size_t kLowercaseSize;
extern const Decomposition kDecompositions[];
extern const size_t kDecompositionsSize;
extern const uint32_t kDecompositionData[];
extern const size_t kDecompositionDataSize;
extern const CombiningClass kCombiningClasses[];
extern const size_t kCombiningClassesSize;
extern const Composition kCompositions[];
extern const size_t kCompositionsSize;

}  // namespace jagged::io::unicode::tables
