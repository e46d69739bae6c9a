// Continuing a batch of prompts: every step runs all unfinished sequences as one nested batch and samples
// each one's next token. Without a KV cache (planned) each step recomputes the whole prefix.
#pragma once

#include <cstdint>
#include <vector>

#include "jagged/llama.h"
#include "jagged/sampling.h"

namespace jagged {

struct GenerateOptions {
  int steps = 64;            // new tokens per sequence at most
  bool stop_at_eos = true;   // a sequence ends after emitting the model's EOS
  SamplingParams sampling;
};

// prompts: token ids of each prompt (each non-empty, within the context). Returns the generated ids of each
// prompt (EOS included when emitted). A sequence also stops when it reaches the context length.
std::vector<std::vector<int32_t>> generate(const LlamaModel& model, const std::vector<std::vector<int32_t>>& prompts,
                                           const GenerateOptions& options);

}  // namespace jagged
