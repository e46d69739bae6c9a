// The generation engine: one Llama-family model, a paged KV cache and a continuous-batching scheduler. Every
// frontend (the CLI's run/generate, the HTTP server, the Python module, the decode benchmark) drives this one
// object: it adds requests, calls step() until they finish, and reads the events each step produced.
//
// Every step runs one nested token batch: a decode token for each running request, then prefill chunks, up to
// max_batch_tokens; no padding anywhere. A request's tokens and logits are bit-identical whatever else shares
// its steps, whenever it arrives, however its prompt is chunked, and to a full recompute without the cache.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "jagged/dtype.h"
#include "jagged/llama.h"
#include "jagged/profile.h"
#include "jagged/sampling.h"
#include "jagged/tokenizer.h"

namespace jagged {

// Why a request ended.
enum class FinishReason {
  none,       // still running
  length,     // produced max_tokens
  stop,       // emitted EOS (unless ignore_eos) or a stop string / stop token
  context,    // reached the model's context length before max_tokens
  cancelled,  // cancel() was called
};
const char* finish_reason_name(FinishReason reason);  // "length", "stop", "context", "cancelled", "" for none

struct EngineOptions {
  int64_t max_batch_tokens = 512;    // tokens per step (decode rows + prefill chunks); >= 1
  int64_t kv_cache_tokens = 0;       // KV cache capacity in tokens; 0: enough for max_running x context length
  int64_t kv_cache_bytes = 0;        // alternatively, capacity in bytes (the smaller of the two wins when both set)
  DType kv_dtype = DType::f32;       // KV cache elements: f32, or bf16 (half the bytes; K and V rounded once)
  int64_t max_running = 256;         // requests decoding at once; more wait
  int64_t prefill_chunk_tokens = 0;  // largest prefill chunk of one request per step; 0: max_batch_tokens
  StageProfile* profile = nullptr;   // when set, every step adds its forward's stages and "sampling" (benchmarks)
};

using RequestId = int64_t;

struct GenerationRequest {
  std::vector<int32_t> prompt;           // token ids (BOS included when the model wants it); non-empty
  int64_t max_tokens = 64;               // new tokens at most; the context length also bounds them
  SamplingParams sampling;               // greedy when temperature is 0; the request's own seeded RNG
  std::vector<std::string> stop;         // stop strings (need the engine's tokenizer); not part of the output
  std::vector<int32_t> stop_tokens;      // extra token ids that end the request (kept in the output ids)
  bool ignore_eos = false;               // keep going after EOS (benchmarks)
  int logprobs = -1;                     // < 0: none; 0: the chosen token's log-probability; k > 0: also top k
  bool return_logits = false;            // keep every step's full logits row (tests; costs vocab floats a token)
};

// What one step did for one request: zero or more new tokens, their text, and whether the request ended.
struct RequestEvent {
  RequestId id = 0;
  std::vector<int32_t> tokens;           // tokens sampled this step (0 or 1 today)
  std::string text;                      // newly complete UTF-8 text (stop strings and partial characters held back)
  std::vector<TokenLogprob> logprobs;    // per token when asked: the chosen token, then the top k
  std::vector<std::vector<TokenLogprob>> top_logprobs;
  FinishReason finish = FinishReason::none;
};

// Everything about a finished (or running) request, for JSON reports and tests.
struct RequestResult {
  RequestId id = 0;
  int64_t prompt_tokens = 0;
  std::vector<int32_t> tokens;           // generated ids
  std::string text;                      // generated text (without the stop string)
  FinishReason finish = FinishReason::none;
  std::vector<float> logits;             // [tokens, vocab_size] when return_logits
  std::vector<float> token_logprobs;     // when logprobs >= 0
  double time_to_first_token_s = 0.0;    // from add_request to the first token
  std::vector<double> token_times_s;     // time of each token since add_request
  int64_t preemptions = 0;               // times the request was evicted and recomputed
};

struct EngineStats {
  int64_t running = 0;                   // requests holding cache blocks
  int64_t waiting = 0;                   // requests not yet admitted (or preempted)
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_used = 0;
  int64_t kv_block_tokens = 0;           // tokens per block
  int64_t kv_bytes = 0;                  // bytes of the whole cache
  int64_t steps = 0;
  int64_t last_step_tokens = 0;          // rows of the last step's batch
  int64_t prompt_tokens = 0;             // prefilled tokens so far (recomputation included)
  int64_t generated_tokens = 0;
  int64_t preemptions = 0;
};

class Engine {
 public:
  // The model must outlive the engine; the tokenizer (optional) too. It is needed for stop strings and text.
  Engine(const LlamaModel& model, const Tokenizer* tokenizer, const EngineOptions& options = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a request; it joins the next step. InvalidArgument at once for an empty prompt, ids out of range, a
  // prompt at or past the context length, a prompt that cannot fit the whole KV cache even alone, bad sampling
  // parameters, or stop strings without a tokenizer. Thread-safe (a server thread may add while another steps).
  RequestId add_request(GenerationRequest request);
  // Ends a request at the next step (finish reason cancelled) and frees its blocks. Unknown ids are ignored.
  // Thread-safe.
  void cancel(RequestId id);

  // Runs one scheduler step and returns what it produced; an empty vector when there is no work.
  std::vector<RequestEvent> step();
  bool has_work() const;  // thread-safe

  // The accumulated result of a request (finished or not); removes it when finished and `release` is set.
  RequestResult result(RequestId id, bool release = true);
  EngineStats stats() const;  // thread-safe
  const LlamaModel& model() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Convenience for batch jobs (CLI run, tests): every request to completion, results in the order given.
std::vector<RequestResult> generate_all(Engine& engine, std::vector<GenerationRequest> requests);

}  // namespace jagged
