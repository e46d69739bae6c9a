// Continuing a batch of prompts through the generation engine (engine.h): paged KV cache, continuous batching.
// The simple batch form used by `jagged run`; servers and streaming use Engine directly.
#pragma once

#include <cstdint>
#include <vector>

#include "jagged/engine.h"
#include "jagged/llama.h"
#include "jagged/sampling.h"

namespace jagged {

struct GenerateOptions {
  int steps = 64;            // new tokens per sequence at most
  bool stop_at_eos = true;   // a sequence ends after emitting the model's EOS
  SamplingParams sampling;
  EngineOptions engine;      // the KV cache (kv_dtype, capacity) and the step's token budget
};

// prompts: token ids of each prompt (each non-empty, within the context). Returns each prompt's result: the
// generated ids (EOS included when emitted) and why it ended (a sequence also stops at the context length).
std::vector<RequestResult> generate_results(const LlamaModel& model, const std::vector<std::vector<int32_t>>& prompts,
                                            const GenerateOptions& options);
// The generated ids of each prompt only.
std::vector<std::vector<int32_t>> generate(const LlamaModel& model, const std::vector<std::vector<int32_t>>& prompts,
                                           const GenerateOptions& options);

}  // namespace jagged
