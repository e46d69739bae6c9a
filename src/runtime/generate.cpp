#include "jagged/generate.h"

#include <algorithm>

namespace jagged {

std::vector<std::vector<int32_t>> generate(const LlamaModel& model, const std::vector<std::vector<int32_t>>& prompts,
                                           const GenerateOptions& options) {
  const LlamaConfig& config = model.config();
  if (prompts.empty()) throw InvalidArgument("generate: no prompts");
  if (options.steps < 0) throw InvalidArgument(concat("generate: steps must be >= 0, got ", options.steps));
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty()) throw InvalidArgument(concat("generate: prompt ", i, " has no tokens (start it with BOS)"));
    if (static_cast<int64_t>(prompts[i].size()) > config.context_length) {
      throw InvalidArgument(concat("generate: prompt ", i, " has ", prompts[i].size(),
                                   " tokens, more than the model's context length ", config.context_length));
    }
  }
  Sampler sampler(options.sampling);
  std::vector<std::vector<int32_t>> sequences = prompts;
  std::vector<std::vector<int32_t>> generated(prompts.size());
  std::vector<bool> done(prompts.size(), false);
  for (int step = 0; step < options.steps; ++step) {
    std::vector<size_t> active;
    std::vector<int64_t> lengths;
    for (size_t i = 0; i < sequences.size(); ++i) {
      if (done[i] || static_cast<int64_t>(sequences[i].size()) >= config.context_length) continue;
      active.push_back(i);
      lengths.push_back(static_cast<int64_t>(sequences[i].size()));
    }
    if (active.empty()) break;
    NestedTensor batch = NestedTensor::from_lengths(lengths, {}, DType::i32);
    int32_t* ids = batch.values().data<int32_t>();
    for (const size_t i : active) ids = std::copy(sequences[i].begin(), sequences[i].end(), ids);
    const Tensor logits = model.forward(batch, {BatchLayout::nested, /*last_token_logits=*/true, nullptr});
    for (size_t row = 0; row < active.size(); ++row) {
      const size_t i = active[row];
      const int32_t next = sampler.sample(
          {logits.data<float>() + row * config.vocab_size, static_cast<size_t>(config.vocab_size)});
      sequences[i].push_back(next);
      generated[i].push_back(next);
      if (options.stop_at_eos && next == config.eos_id) done[i] = true;
    }
  }
  return generated;
}

}  // namespace jagged
