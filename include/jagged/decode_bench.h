// The decode benchmark (`jagged bench --decode`): N requests with ragged prompts and ragged output lengths go
// through the engine (continuous batching, no padding), arriving at once or at a rate; beside them, in the same
// run and on the same kernels, the padded static batch; optionally llama.cpp on the same requests; and one
// request's decode step against the time to stream the weights once at the measured memory bandwidth.
//
// The padded static batch is the same engine driven the way a padded static batch computes: every prompt padded
// to the longest one (filler ids after the real ones) and every sequence decoded until the longest output is
// done (max_tokens = the longest output, EOS ignored). It costs what a padded batch costs (every padded token is
// prefilled, every finished sequence keeps decoding); only the tokens each request asked for count as useful.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "jagged/engine.h"
#include "jagged/llama.h"

namespace jagged {

// The requests of one run: random prompt ids, each request's number of new tokens, and its arrival time.
struct DecodeWorkload {
  std::vector<std::vector<int32_t>> prompts;  // token ids, each non-empty
  std::vector<int64_t> new_tokens;            // per request
  std::vector<double> arrival_s;              // per request, seconds after the start (non-decreasing)
};

struct DecodeBenchOptions {
  std::vector<int64_t> concurrency{1, 8, 32, 64};  // requests per run
  int64_t min_prompt = 10;    // prompt lengths uniform in [min_prompt, max_prompt]
  int64_t max_prompt = 256;
  int64_t min_new = 16;       // new tokens uniform in [min_new, max_new]
  int64_t max_new = 256;
  double rate = 0.0;          // requests per second (Poisson arrivals); 0: all arrive at once
  uint64_t seed = 555;        // of lengths, ids and arrivals
  EngineOptions engine;       // kv_cache_tokens and kv_cache_bytes 0: sized to hold every request of a run at once
  bool padded = true;         // also run the padded static batch
  bool compare_llamacpp = false;  // also run llama.cpp (needs scripts/setup_llamacpp.sh)
  // The GGUF file the model was loaded from: llama.cpp runs on it, with the file's (quantized) types. Empty:
  // the model is written as an f32 GGUF file for llama.cpp.
  std::filesystem::path llamacpp_gguf;
  bool step_probe = true;     // one request's decode step vs streaming the weights once
  int64_t probe_prompt = 128;  // the probe request's prompt length and decode steps measured
  int64_t probe_steps = 32;
  std::function<void(const std::string&)> progress;  // called with a line before each part (may be empty)
};

struct LatencySummary {
  int64_t count = 0;
  double p50 = 0.0;
  double p99 = 0.0;
  double mean = 0.0;
};

// One way of running the requests, timed from the first arrival to the last token.
struct DecodeRunResult {
  std::string mode;                // "continuous", "padded_static" or "llama.cpp"
  int64_t num_requests = 0;
  int64_t prompt_tokens = 0;       // prefilled tokens (padded: padding included)
  int64_t generated_tokens = 0;    // tokens sampled (padded: those past a request's own length included)
  int64_t useful_tokens = 0;       // the new tokens the requests asked for
  int64_t steps = 0;
  double seconds = 0.0;
  double tokens_per_second = 0.0;  // useful_tokens / seconds: what the requests got
  int64_t decode_steps = 0;        // steps with no prefill rows
  int64_t decode_tokens = 0;       // tokens those steps sampled
  double decode_seconds = 0.0;
  double decode_tokens_per_second = 0.0;
  LatencySummary time_to_first_token_s;  // from each request's arrival
  LatencySummary inter_token_s;          // between consecutive tokens of a request
  int64_t kv_cache_bytes = 0;      // the cache's capacity
  int64_t kv_peak_bytes = 0;       // most blocks in use at once x bytes per block
  int64_t preemptions = 0;
  // Seconds per decode step in each stage of the forward and in sampling, averaged over the decode steps
  // (engine runs only).
  std::vector<std::pair<std::string, double>> decode_step_stages;
  // Peak resident set: llama.cpp's driver process; for jagged's runs, this process's so far (it only grows: the
  // first run of a bench is the one to compare).
  int64_t peak_rss_bytes = 0;
  std::string note;                // why a peer did not run, or how it ran
};

struct DecodeBenchPoint {
  int64_t concurrency = 0;
  std::vector<int64_t> prompt_lengths;
  std::vector<int64_t> new_tokens;
  DecodeRunResult continuous;
  std::optional<DecodeRunResult> padded;     // when options.padded
  std::optional<DecodeRunResult> llamacpp;   // when options.compare_llamacpp (tokens 0 and a note if unavailable)
};

// One request decoding alone: its step time against reading every weight once from memory.
struct DecodeStepProbe {
  double step_seconds = 0.0;          // median of the decode steps
  int64_t weight_bytes = 0;           // bytes a decode step streams: every packed matrix and the LM head as held
                                      // in memory (quantized: their blocks), not the embedding
  double bandwidth_bytes_per_second = 0.0;  // read bandwidth on the same threads: the median of measurements
                                            // taken after every 4 of those steps (the VM's bandwidth drifts)
  double stream_seconds = 0.0;        // weight_bytes / bandwidth
  double ratio = 0.0;                 // step_seconds / stream_seconds
};

struct DecodeBenchReport {
  int threads = 0;
  std::string weights;           // the weight type asked (--dtype: f32, bf16, q8_0...)
  std::string linear_path;       // the kernel path of that type (chosen at run time from the CPU)
  std::string projection_types;  // the projections as they ran: ops::describe_weight_types (a file keeps its types)
  DecodeBenchOptions options;
  int64_t kv_bytes_per_token = 0;
  std::vector<DecodeBenchPoint> points;
  std::optional<DecodeStepProbe> step_probe;
};

// `num_requests` requests drawn from the options (lengths, ids, arrivals), reproducible from options.seed.
// InvalidArgument when a prompt plus its output cannot fit the model's context.
DecodeWorkload draw_decode_workload(const LlamaConfig& config, const DecodeBenchOptions& options,
                                    int64_t num_requests);
// The padded static batch of a workload: prompts padded to the longest, every output as long as the longest,
// all arriving at once.
DecodeWorkload padded_static_workload(const DecodeWorkload& workload, int64_t vocab_size, uint64_t seed);

// Runs the workload through one engine (EOS ignored: each request makes exactly its number of tokens) and
// measures it. `useful_tokens` per request (empty: its new_tokens) count towards tokens_per_second.
DecodeRunResult run_decode_workload(const LlamaModel& model, const DecodeWorkload& workload,
                                    const EngineOptions& engine_options, const std::string& mode,
                                    const std::vector<int64_t>& useful_tokens = {});

DecodeStepProbe measure_decode_step(const LlamaModel& model, const DecodeBenchOptions& options);

// The whole benchmark: every concurrency level, each with its runs, then the step probe.
DecodeBenchReport run_decode_bench(const LlamaModel& model, const DecodeBenchOptions& options);

// The report as JSON text (every field above; `model` and `command` recorded as given).
std::string decode_bench_json(const DecodeBenchReport& report, const std::string& model, const std::string& command);

}  // namespace jagged
