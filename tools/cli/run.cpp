// jagged run: the continuation of every prompt, all prompts in one nested batch. Without a KV cache (the
// generation issue adds it) each step recomputes every sequence's prefix, still as one ragged batch.
#include <fstream>
#include <iostream>

#include "commands.h"
#include "common.h"
#include "jagged/sampling.h"

namespace jagged::cli {
namespace {

struct RunArgs {
  std::string model;
  std::string tokenizer;
  std::vector<std::string> prompts;
  std::string prompts_file;
  int steps = 64;
  float temperature = 0.0f;
  float top_p = 1.0f;
  uint64_t seed = 0;
  bool show_ids = false;
};

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw FileError(concat(path, ": cannot open prompts file"));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

void run(const RunArgs& args) {
  std::vector<std::string> prompts = args.prompts;
  if (!args.prompts_file.empty()) {
    for (auto& line : read_lines(args.prompts_file)) prompts.push_back(std::move(line));
  }
  if (prompts.empty()) prompts.emplace_back();  // no prompt: start from BOS alone
  if (args.steps < 0) throw InvalidArgument(concat("-n must be >= 0, got ", args.steps));

  const LlamaModel model = open_llama(args.model);
  const LlamaConfig& config = model.config();
  const auto tokenizer = open_tokenizer_for(args.model, args.tokenizer, config.vocab_size);

  std::vector<std::vector<int32_t>> sequences;
  for (const auto& prompt : prompts) {
    std::vector<int32_t> ids = tokenizer ? tokenizer->encode(prompt, /*add_special=*/true) : std::vector<int32_t>{};
    if (ids.empty() || (tokenizer == nullptr)) ids.insert(ids.begin(), config.bos_id);
    if (static_cast<int64_t>(ids.size()) > config.context_length) {
      throw InvalidArgument(concat("prompt ", sequences.size(), " has ", ids.size(),
                                   " tokens, more than the model's context length ", config.context_length));
    }
    sequences.push_back(std::move(ids));
  }
  const std::vector<size_t> prompt_lengths = [&] {
    std::vector<size_t> lengths;
    for (const auto& sequence : sequences) lengths.push_back(sequence.size());
    return lengths;
  }();

  Sampler sampler({args.temperature, args.top_p, args.seed});
  std::vector<bool> done(sequences.size(), false);
  for (int step = 0; step < args.steps; ++step) {
    std::vector<size_t> active;
    std::vector<std::vector<int32_t>> batch;
    for (size_t i = 0; i < sequences.size(); ++i) {
      if (done[i] || static_cast<int64_t>(sequences[i].size()) >= config.context_length) continue;
      active.push_back(i);
      batch.push_back(sequences[i]);
    }
    if (active.empty()) break;
    const Tensor logits = model.forward(make_token_batch(batch), {BatchLayout::nested, true, nullptr});
    for (size_t row = 0; row < active.size(); ++row) {
      const int32_t next = sampler.sample({logits.data<float>() + row * config.vocab_size,
                                           static_cast<size_t>(config.vocab_size)});
      sequences[active[row]].push_back(next);
      if (next == config.eos_id) done[active[row]] = true;
    }
  }

  for (size_t i = 0; i < sequences.size(); ++i) {
    const std::vector<int32_t> generated(sequences[i].begin() + static_cast<std::ptrdiff_t>(prompt_lengths[i]),
                                         sequences[i].end());
    if (args.show_ids || tokenizer == nullptr) {
      for (size_t t = 0; t < generated.size(); ++t) std::cout << (t ? " " : "") << generated[t];
      std::cout << "\n";
      continue;
    }
    std::string text = prompts[i];
    int32_t previous = sequences[i][prompt_lengths[i] - 1];
    for (const int32_t id : generated) {
      if (id == config.eos_id) break;
      text += tokenizer->decode_token(previous, id);
      previous = id;
    }
    std::cout << text << "\n";
  }
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* command = app.add_subcommand("run", "continue prompts (all prompts in one nested batch)");
  command->add_option("--model,-m", args->model, "model: llama2.c .bin, Hugging Face dir, .gguf, or synthetic:NAME")
      ->required();
  command->add_option("--tokenizer", args->tokenizer, "tokenizer file (default: the model's own)");
  command->add_option("--prompt,-p", args->prompts, "a prompt (repeat for several; empty: start from BOS)");
  command->add_option("--prompts", args->prompts_file, "a file with one prompt per line");
  command->add_option("-n,--steps", args->steps, "tokens to generate per prompt")->capture_default_str();
  command->add_option("--temp,--temperature", args->temperature, "0: greedy")->capture_default_str();
  command->add_option("--top-p", args->top_p, "nucleus sampling mass")->capture_default_str();
  command->add_option("--seed", args->seed, "sampling seed")->capture_default_str();
  command->add_flag("--ids", args->show_ids, "print token ids instead of text");
  command->callback([args] { run(*args); });
}

}  // namespace jagged::cli
