// llama.cpp as a live peer: jagged's driver (bench/llamacpp_driver.cpp, built with llama.cpp 80fb11a by
// scripts/setup_llamacpp.sh) runs the same requests through libllama in a subprocess, on a GGUF file that
// export_gguf (model_files.h) wrote from the same weights.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace jagged {

// The driver binary: $JAGGED_LLAMACPP_DIR/llamacpp_driver, or llama.cpp/llamacpp_driver beside the running
// executable or its folder (build/jagged -> build/llama.cpp), or $JAGGED_SOURCE_DIR/build/llama.cpp. Throws
// InvalidArgument saying to run scripts/setup_llamacpp.sh when none exists.
std::filesystem::path llamacpp_driver_path();
// Whether llamacpp_driver_path() would find the driver.
bool llamacpp_available();

struct LlamaCppPrefillOptions {
  int threads = 2;
  bool kv_f32 = false;  // K/V cache in f32 (llama.cpp's default, false, stores it in f16)
  int runs = 5;
  int warmup = 1;
};

// One way llama.cpp ran the batch, timed over whole runs.
struct LlamaCppPrefillPath {
  std::string name;  // one_batch_unified, one_batch_split_kv (all sequences in one llama_batch), sequential
  bool kv_unified = false;
  std::vector<double> run_seconds;
  double median_seconds = 0.0;
};

struct LlamaCppPrefillResult {
  std::vector<LlamaCppPrefillPath> paths;
  std::vector<float> last_logits;  // [num_seqs, vocab_size]: each sequence's last position (one_batch_unified)
  int64_t peak_rss_bytes = 0;      // the driver process's peak resident set (all its paths)
  std::string report_json;         // the driver's whole report
};

// Prefills `sequences` (token ids; each non-empty) with llama.cpp. Throws InvalidArgument when llama.cpp is not
// built, Error with the driver's message when it fails.
LlamaCppPrefillResult run_llamacpp_prefill(const std::filesystem::path& gguf,
                                           const std::vector<std::vector<int32_t>>& sequences,
                                           const LlamaCppPrefillOptions& options = {});

struct LlamaCppDecodeOptions {
  int threads = 2;
  bool kv_f32 = false;      // K/V cache in f32 (llama.cpp's default, false, stores it in f16)
  bool kv_unified = false;  // false: a KV buffer per sequence (llama.cpp's faster mode for unrelated requests)
  uint64_t seed = 1;        // of the random prompt ids (prompt lengths given)
  bool return_ids = false;  // fill generated_ids
};

// N requests arriving at once: the prompts in one llama_batch, then one llama_batch per step with the next token
// of every running request; greedy; a request stops after its count of new tokens (EOS does not stop it).
struct LlamaCppDecodeResult {
  int num_requests = 0;
  bool kv_unified = false;
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  int decode_steps = 0;
  double prefill_seconds = 0.0;              // until every request has its first token
  double decode_seconds = 0.0;               // the steps after that
  double decode_tokens_per_second = 0.0;     // tokens of those steps / decode_seconds
  double generated_tokens_per_second = 0.0;  // all generated tokens / the whole run
  double time_to_first_token_p50 = 0.0, time_to_first_token_p99 = 0.0;  // seconds
  double inter_token_p50 = 0.0, inter_token_p99 = 0.0;                  // seconds
  std::vector<std::vector<int32_t>> generated_ids;  // per request, when return_ids
  int64_t peak_rss_bytes = 0;                       // the driver process's peak resident set
  std::string report_json;
};

// Prompts of random ids with these lengths (seeded), `new_tokens` per request (one value for all, or one each).
LlamaCppDecodeResult run_llamacpp_decode(const std::filesystem::path& gguf, const std::vector<int64_t>& prompt_lengths,
                                         const std::vector<int64_t>& new_tokens,
                                         const LlamaCppDecodeOptions& options = {});
// Given prompts.
LlamaCppDecodeResult run_llamacpp_decode(const std::filesystem::path& gguf,
                                         const std::vector<std::vector<int32_t>>& prompts,
                                         const std::vector<int64_t>& new_tokens,
                                         const LlamaCppDecodeOptions& options = {});

}  // namespace jagged
