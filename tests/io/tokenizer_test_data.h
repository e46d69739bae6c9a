// Shared by the tokenizer tests: where the fetched reference data lives (scripts/fetch_test_data.sh puts it in
// build/test-data, never committed), llama.cpp's .inp/.out reference cases, and a checker that reports every
// mismatching case at once.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "jagged/tokenizer.h"
#include "testing/files.h"
#include "testing/ragged.h"

namespace jagged::testing {

inline std::filesystem::path tokenizer_data_dir() {
  return std::filesystem::path(JAGGED_SOURCE_DIR) / "build" / "test-data";
}
inline std::filesystem::path llama_vocab(const std::string& name) {
  return tokenizer_data_dir() / "llama.cpp" / "models" / ("ggml-vocab-" + name + ".gguf");
}

// One tokenizer per file for the whole test program (loading a 128K vocabulary takes a second, more under
// sanitizers); tokenizers are immutable, so tests can share them.
inline const Tokenizer& cached_tokenizer(const std::filesystem::path& path) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  std::unique_ptr<Tokenizer>& entry = cache[path.string()];
  if (entry == nullptr) entry = load_tokenizer(path);
  return *entry;
}

struct VocabCase {
  std::string text;
  std::vector<int32_t> ids;  // encoded without special tokens
};

// llama.cpp's format (tests/test-tokenizer-0.cpp): inputs separated by "\n__ggml_vocab_test__\n", one line of
// ids per input in the .out file.
inline std::vector<VocabCase> read_vocab_cases(const std::filesystem::path& gguf) {
  const std::string inputs = read_text(gguf.string() + ".inp");
  const std::string outputs = read_text(gguf.string() + ".out");
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0; pos < inputs.size();) {
    const size_t next = inputs.find(separator, pos);
    if (next == std::string::npos) {
      texts.push_back(inputs.substr(pos));
      break;
    }
    texts.push_back(inputs.substr(pos, next - pos));
    pos = next + separator.size();
  }
  std::vector<VocabCase> cases;
  std::istringstream lines(outputs);
  std::string line;
  for (const std::string& text : texts) {
    if (!std::getline(lines, line)) break;
    VocabCase c{text, {}};
    std::istringstream ids(line);
    for (int32_t id; ids >> id;) c.ids.push_back(id);
    cases.push_back(std::move(c));
  }
  EXPECT_EQ(cases.size(), texts.size()) << gguf << ": .inp and .out disagree on the number of cases";
  return cases;
}

inline std::string ids_string(const std::vector<int32_t>& ids) {
  std::ostringstream out;
  for (size_t i = 0; i < ids.size(); ++i) out << (i ? " " : "") << ids[i];
  return out.str();
}

// Encodes every case (no special tokens) and fails listing each mismatch; cases in `known_exceptions` (by
// index) must fail, so the list cannot go stale. Returns the number of cases that matched.
inline int check_vocab_cases(const Tokenizer& tokenizer, const std::vector<VocabCase>& cases, const std::string& name,
                             const std::set<size_t>& known_exceptions = {}) {
  int matched = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::vector<int32_t> ids = tokenizer.encode(cases[i].text, /*add_special=*/false);
    const bool equal = ids == cases[i].ids;
    matched += equal;
    if (known_exceptions.count(i) != 0) {
      EXPECT_FALSE(equal) << name << " case " << i << " is listed as a known exception but now matches";
      continue;
    }
    EXPECT_TRUE(equal) << name << " case " << i << " '" << cases[i].text << "'\n  expected " << ids_string(cases[i].ids)
                       << "\n  actual   " << ids_string(ids);
  }
  return matched;
}

}  // namespace jagged::testing
