// The Unicode layer under the tokenizers: UTF-8 decoding of bad input, categories, lower-casing, and NFD / NFC
// against the Unicode Consortium's NormalizationTest.txt (from Debian's unicode-data, when installed).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "io/unicode.h"

namespace jagged::io::unicode {
namespace {

TEST(Unicode, DecodesValidAndRejectsBadUtf8OneByteAtATime) {
  EXPECT_EQ(to_code_points("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\xA6\x99"), (std::u32string{U'a', 0xE9, 0x20AC, 0x1F999}));
  const std::u32string bad(1, kReplacement);
  EXPECT_EQ(to_code_points("\x80"), bad);                                          // lone continuation
  EXPECT_EQ(to_code_points("\xC0\xAF"), bad + bad);                                // overlong
  EXPECT_EQ(to_code_points("\xE0\x80\xAF"), bad + bad + bad);                      // overlong
  EXPECT_EQ(to_code_points("\xED\xA0\x80"), bad + bad + bad);                      // surrogate
  EXPECT_EQ(to_code_points("\xF4\x90\x80\x80"), bad + bad + bad + bad);            // above U+10FFFF
  EXPECT_EQ(to_code_points("\xE2\x82"), bad + bad);                                // truncated
  EXPECT_EQ(to_code_points("\xE2\x82x"), bad + bad + U"x");                        // cut by ASCII
  EXPECT_FALSE(is_valid_utf8("ok\xff"));
  EXPECT_TRUE(is_valid_utf8("ok \xF0\x9F\xA6\x99"));
  std::string out;
  append_utf8(out, 0xD800);  // unencodable: written as U+FFFD
  EXPECT_EQ(out, "\xEF\xBF\xBD");
  EXPECT_EQ(to_utf8(U"a\u00E9\U0001F999"), "a\xC3\xA9\xF0\x9F\xA6\x99");
}

TEST(Unicode, CategoriesAndLowerCase) {
  EXPECT_EQ(category(U'A'), Category::Lu);
  EXPECT_EQ(category(0x4E2D), Category::Lo);    // 中
  EXPECT_EQ(category(0x0301), Category::Mn);    // combining acute
  EXPECT_EQ(category(0x00BD), Category::No);    // ½
  EXPECT_EQ(category(0x1F999), Category::So);   // 🦙
  EXPECT_EQ(category(0x200D), Category::Cf);    // zero-width joiner
  EXPECT_EQ(category(0x0378), Category::Cn);    // unassigned
  EXPECT_EQ(category(0x10FFFF), Category::Cn);
  EXPECT_EQ(category(0x110000), Category::Cn);
  EXPECT_TRUE(is_letter(0x1100) && is_number(0x0663) && is_punctuation(0x3002));
  EXPECT_TRUE(is_whitespace(0x3000) && is_whitespace(U'\x85') && !is_whitespace(0x200B) && !is_whitespace(0x1C));
  EXPECT_EQ(to_lower(U'Ä'), U'ä');
  EXPECT_EQ(to_lower(0x0411), 0x0431);  // Б -> б
  EXPECT_EQ(to_lower(U'ß'), U'ß');
}

TEST(Unicode, NormalisesSelectedCases) {
  EXPECT_EQ(nfd(U"\u00C5"), U"A\u030A");
  EXPECT_EQ(nfc(U"A\u030A"), U"\u00C5");
  EXPECT_EQ(nfc(U"\u212B"), U"\u00C5");                   // Angstrom sign: singleton
  EXPECT_EQ(nfd(U"a\u0323\u0302"), U"a\u0323\u0302");      // already ordered
  EXPECT_EQ(nfd(U"a\u0302\u0323"), U"a\u0323\u0302");      // reordered by combining class
  EXPECT_EQ(nfc(U"\u1100\u1161\u11A8"), U"\uAC01");       // Hangul L V T
  EXPECT_EQ(nfd(U"\uAC01"), U"\u1100\u1161\u11A8");
  EXPECT_EQ(nfc(U"\u0958"), U"\u0915\u093C");             // composition exclusion
  EXPECT_EQ(nfc(U""), U"");
}

// NormalizationTest.txt: c1;c2;c3;c4;c5 with c2 == NFC(c1..c3), c3 == NFD(c1..c3), c4 == NFC(c4, c5),
// c5 == NFD(c4, c5). Each NFD / NFC invariant is checked on every line.
TEST(Unicode, MatchesNormalizationTest) {
  const char* path = "/usr/share/unicode/NormalizationTest.txt.bz2";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " missing (Debian package unicode-data)";
  FILE* pipe = popen((std::string("bzcat ") + path).c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string text;
  char buffer[65536];
  for (size_t read; (read = fread(buffer, 1, sizeof buffer, pipe)) > 0;) text.append(buffer, read);
  pclose(pipe);
  std::istringstream lines(text);
  int checked = 0, failed = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#' || line[0] == '@') continue;
    std::vector<std::u32string> columns;
    std::istringstream fields(line);
    for (std::string field; columns.size() < 5 && std::getline(fields, field, ';');) {
      std::u32string column;
      std::istringstream codes(field);
      for (std::string code; codes >> code;) column.push_back(static_cast<char32_t>(std::stoul(code, nullptr, 16)));
      columns.push_back(column);
    }
    ASSERT_EQ(columns.size(), 5u) << line;
    bool ok = true;
    for (int i = 0; i < 3; ++i) ok = ok && nfc(columns[i]) == columns[1] && nfd(columns[i]) == columns[2];
    for (int i = 3; i < 5; ++i) ok = ok && nfc(columns[i]) == columns[3] && nfd(columns[i]) == columns[4];
    ++checked;
    if (!ok && ++failed <= 5) ADD_FAILURE() << "NormalizationTest line: " << line;
  }
  EXPECT_EQ(failed, 0);
  EXPECT_GT(checked, 10000);
}

}  // namespace
}  // namespace jagged::io::unicode
