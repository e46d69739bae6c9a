// Tokenizer encode throughput on a real corpus, one benchmark per tokenizer family, to compare with
// transformers.js (npm @lenml/tokenizers) on the same lines. The corpus is the Brown corpus with its tags
// stripped (57K lines, 6.1 MB), written with the tokenizer files by tests/io/tokenizer_reference.mjs into
// build/test-data/tokenizer-reference (scripts/fetch_test_data.sh runs it).
//   build/bench/tokenizer_bench --benchmark_format=json
//   node tests/io/tokenizer_reference.mjs build/test-data --bench      (the same lines in transformers.js)
// Families: mistral and gemma3 (SentencePiece-converted tokenizer.json), llama3 and qwen3 (byte-level BPE
// tokenizer.json), llama-spm (llama.cpp's Llama 2 vocabulary in GGUF: score-ordered SentencePiece). One thread,
// no special tokens; counters tokens_per_second and bytes_per_second.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "jagged/tokenizer.h"

namespace {

namespace fs = std::filesystem;

const fs::path kData = fs::path(JAGGED_SOURCE_DIR) / "build" / "test-data";

const std::vector<std::string>& corpus_lines() {
  static const std::vector<std::string> lines = [] {
    std::vector<std::string> out;
    std::ifstream in(kData / "tokenizer-reference" / "corpus-bench.txt");
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }();
  return lines;
}

const std::map<std::string, fs::path>& tokenizer_files() {
  static const std::map<std::string, fs::path> files = {
      {"mistral", kData / "tokenizer-reference" / "mistral" / "tokenizer.json"},
      {"gemma3", kData / "tokenizer-reference" / "gemma3" / "tokenizer.json"},
      {"llama3", kData / "npm" / "tokenizer-llama3" / "models" / "tokenizer.json"},
      {"qwen3", kData / "npm" / "tokenizer-qwen3" / "models" / "tokenizer.json"},
      {"llama-spm", kData / "llama.cpp" / "models" / "ggml-vocab-llama-spm.gguf"},
  };
  return files;
}

void BM_Encode(benchmark::State& state, const std::string& family) {
  const fs::path& file = tokenizer_files().at(family);
  const std::vector<std::string>& lines = corpus_lines();
  if (!fs::exists(file) || lines.empty()) {
    state.SkipWithError("test data missing: run scripts/fetch_test_data.sh");
    return;
  }
  static std::map<std::string, std::unique_ptr<jagged::Tokenizer>> loaded;
  std::unique_ptr<jagged::Tokenizer>& tokenizer = loaded[family];
  if (tokenizer == nullptr) tokenizer = jagged::load_tokenizer(file);
  int64_t tokens = 0;
  int64_t bytes = 0;
  for (auto _ : state) {
    for (const std::string& line : lines) {
      tokens += static_cast<int64_t>(tokenizer->encode(line, /*add_special=*/false).size());
      bytes += static_cast<int64_t>(line.size());
    }
  }
  state.counters["tokens_per_second"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
  state.counters["bytes_per_second"] = benchmark::Counter(static_cast<double>(bytes), benchmark::Counter::kIsRate);
  state.counters["tokens_per_pass"] = static_cast<double>(tokens) / static_cast<double>(state.iterations());
}

BENCHMARK_CAPTURE(BM_Encode, mistral, std::string("mistral"))->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Encode, gemma3, std::string("gemma3"))->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Encode, llama3, std::string("llama3"))->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Encode, qwen3, std::string("qwen3"))->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Encode, llama_spm, std::string("llama-spm"))->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
