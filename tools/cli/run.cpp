// jagged run: the continuation of every prompt, all prompts in one nested batch (see jagged/generate.h).
#include <iostream>

#include "commands.h"
#include "common.h"
#include "jagged/generate.h"

namespace jagged::cli {
namespace {

struct RunArgs {
  std::string model;
  std::string tokenizer;
  std::string dtype = "f32";
  DType kv_dtype = DType::f32;
  std::vector<std::string> prompts;
  std::string prompts_file;
  int steps = 64;
  float temperature = 0.0f;
  float top_p = 1.0f;
  uint64_t seed = 0;
  bool show_ids = false;
};

void run(const RunArgs& args) {
  if (args.steps < 0) throw InvalidArgument(concat("-n (steps) must be >= 0, got ", args.steps));
  std::vector<std::string> prompts = args.prompts;
  if (!args.prompts_file.empty()) {
    for (auto& line : read_lines(args.prompts_file, "prompts file")) prompts.push_back(std::move(line));
  }
  // No prompt given at all: start from BOS alone. A prompts file of N lines gives N outputs, none for N = 0.
  if (prompts.empty() && args.prompts_file.empty()) prompts.emplace_back();

  const LlamaModel model = open_llama(args.model, args.dtype);
  const LlamaConfig& config = model.config();
  const auto tokenizer = open_tokenizer_for(args.model, args.tokenizer, config.vocab_size);
  if (prompts.empty()) return;

  if (tokenizer == nullptr && !(prompts.size() == 1 && prompts[0].empty())) {
    throw InvalidArgument(concat(args.model, " has no tokenizer: pass --tokenizer to give text prompts"));
  }
  std::vector<std::vector<int32_t>> sequences;
  for (const auto& prompt : prompts) {
    std::vector<int32_t> ids = tokenizer ? tokenizer->encode(prompt, /*add_special=*/true) : std::vector<int32_t>{};
    if (ids.empty() || (tokenizer == nullptr)) ids.insert(ids.begin(), config.bos_id);
    sequences.push_back(std::move(ids));
  }
  GenerateOptions options;
  options.steps = args.steps;
  options.sampling = {.temperature = args.temperature, .top_p = args.top_p, .seed = args.seed};
  options.engine.kv_dtype = args.kv_dtype;
  const std::vector<RequestResult> results = generate_results(model, sequences, options);
  for (size_t i = 0; i < results.size(); ++i) {
    // Shorter than asked without EOS (the context is full) is said, never silent.
    if (results[i].finish == FinishReason::context) {
      std::cerr << (results.size() > 1 ? concat("[", i, "] ") : "") << "finished: context (" << results[i].tokens.size()
                << " of " << args.steps << " tokens: the model's context of " << config.context_length
                << " is full)\n";
    }
  }

  for (size_t i = 0; i < sequences.size(); ++i) {
    const std::vector<int32_t>& generated = results[i].tokens;
    if (args.show_ids || tokenizer == nullptr) {
      for (size_t t = 0; t < generated.size(); ++t) std::cout << (t ? " " : "") << generated[t];
      std::cout << "\n";
      continue;
    }
    std::string text = prompts[i];
    int32_t previous = sequences[i].back();
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
  add_dtype_option(*command, args->dtype);
  add_kv_dtype_option(*command, args->kv_dtype);
  command->add_option("--prompt,-p", args->prompts, "a prompt (repeat for several; empty: start from BOS)");
  command->add_option("--prompts", args->prompts_file, "a file with one prompt per line (at most 1 MiB each; '-': stdin)");
  command->add_option("-n,--steps", args->steps, "tokens to generate per prompt")->capture_default_str();
  command->add_option("--temp,--temperature", args->temperature, "0: greedy")->capture_default_str();
  command->add_option("--top-p", args->top_p, "nucleus sampling mass")->capture_default_str();
  command->add_option("--seed", args->seed, "sampling seed")->capture_default_str();
  command->add_flag("--ids", args->show_ids, "print token ids instead of text");
  command->callback([args] { run(*args); });
}

}  // namespace jagged::cli
