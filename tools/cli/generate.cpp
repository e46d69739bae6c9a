// jagged generate: every prompt as one request of the engine (paged KV cache, continuous batching), streamed as it
// is produced. One prompt: its text streams as the tokens come. Several prompts: each line of a request's text is
// printed, prefixed with "[i] " (i: the prompt's index from 0), as soon as the line is complete, and the rest when
// the request finishes; so lines of different requests interleave, but each line is whole. Finish reasons other
// than `length` go to stderr. --json writes per request its tokens, text, finish reason and timings.
#include <fstream>
#include <iostream>
#include <map>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "common.h"
#include "jagged/engine.h"
#include "jagged/threads.h"

namespace jagged::cli {
namespace {

struct GenerateArgs {
  std::string model;
  std::string dtype = "f32";
  std::string tokenizer;
  std::vector<std::string> prompts;
  std::string prompts_file;
  int64_t max_tokens = 64;
  SamplingParams sampling;
  std::vector<std::string> stop;
  int logprobs = -1;
  bool ignore_eos = false;
  EngineOptions engine;
  int threads = 0;
  bool show_ids = false;
  std::string json_path;
};

// What the CLI keeps of a request while it runs: the text not yet printed and, when asked, its log-probabilities.
struct RequestOutput {
  size_t index = 0;
  std::string pending;  // text of the current, unfinished line (several prompts)
  nlohmann::json logprobs = nlohmann::json::array();
};

std::string ids_text(const std::vector<int32_t>& ids) {
  std::string text;
  for (const int32_t id : ids) text += concat(" ", id);
  return text;
}

nlohmann::json logprob_json(const TokenLogprob& logprob) {
  return {{"token", logprob.token}, {"logprob", logprob.logprob}};
}

void generate_command(const GenerateArgs& args) {
  if (args.max_tokens < 1) throw InvalidArgument(concat("-n must be >= 1, got ", args.max_tokens));
  refuse_overwriting(args.json_path, "--json", {args.model, args.tokenizer, args.prompts_file});
  prepare_output_file(args.json_path, "--json");
  std::vector<std::string> prompts = args.prompts;
  if (!args.prompts_file.empty()) {
    for (auto& line : read_lines(args.prompts_file, "prompts file")) prompts.push_back(std::move(line));
  }
  // No prompt given at all: start from BOS alone. A prompts file of N lines gives N outputs, none for N = 0.
  if (prompts.empty() && args.prompts_file.empty()) prompts.emplace_back();
  set_num_threads(capped_threads(args.threads));

  const LlamaModel model = open_llama(args.model, args.dtype);
  const LlamaConfig& config = model.config();
  const auto tokenizer = open_tokenizer_for(args.model, args.tokenizer, config.vocab_size);
  for (const std::string& prompt : prompts) {
    if (tokenizer == nullptr && !prompt.empty()) {
      throw InvalidArgument(concat(args.model, " has no tokenizer: pass --tokenizer to give text prompts"));
    }
  }
  const bool show_ids = args.show_ids || tokenizer == nullptr;
  const bool several = prompts.size() > 1;

  Engine engine(model, tokenizer.get(), args.engine);
  std::map<RequestId, RequestOutput> outputs;
  std::vector<RequestId> ids;
  std::vector<int64_t> prompt_tokens;
  for (size_t i = 0; i < prompts.size(); ++i) {
    GenerationRequest request;
    request.prompt = tokenizer ? tokenizer->encode(prompts[i], /*add_special=*/true) : std::vector<int32_t>{};
    if (request.prompt.empty() || tokenizer == nullptr) request.prompt.insert(request.prompt.begin(), config.bos_id);
    request.max_tokens = args.max_tokens;
    request.sampling = args.sampling;
    request.sampling.seed = args.sampling.seed + i;  // each request its own stream: request i uses seed + i
    request.stop = args.stop;
    request.ignore_eos = args.ignore_eos;
    request.logprobs = args.logprobs;
    prompt_tokens.push_back(static_cast<int64_t>(request.prompt.size()));
    const RequestId id = engine.add_request(std::move(request));
    ids.push_back(id);
    RequestOutput& output = outputs[id];
    output.index = i;
    output.pending = show_ids ? "" : prompts[i];
  }
  if (!several && !show_ids && !prompts.empty()) std::cout << prompts[0] << std::flush;

  std::map<RequestId, RequestResult> results;
  while (engine.has_work()) {
    for (const RequestEvent& event : engine.step()) {
      RequestOutput& output = outputs.at(event.id);
      const std::string text = show_ids ? ids_text(event.tokens) : event.text;
      for (size_t t = 0; t < event.logprobs.size(); ++t) {
        nlohmann::json entry = logprob_json(event.logprobs[t]);
        if (t < event.top_logprobs.size()) {
          entry["top"] = nlohmann::json::array();
          for (const TokenLogprob& top : event.top_logprobs[t]) entry["top"].push_back(logprob_json(top));
        }
        output.logprobs.push_back(std::move(entry));
      }
      if (!several) {
        std::cout << text << std::flush;
      } else {
        output.pending += text;
        for (size_t newline; (newline = output.pending.find('\n')) != std::string::npos;) {
          std::cout << "[" << output.index << "] " << output.pending.substr(0, newline) << "\n";
          output.pending.erase(0, newline + 1);
        }
      }
      if (event.finish == FinishReason::none) continue;
      if (several) std::cout << "[" << output.index << "] " << output.pending << "\n";
      else std::cout << "\n";
      std::cout << std::flush;
      if (event.finish != FinishReason::length) {
        std::cerr << (several ? concat("[", output.index, "] ") : "") << "finished: "
                  << finish_reason_name(event.finish) << "\n";
      }
      results[event.id] = engine.result(event.id);
    }
    check_output();  // a closed or full standard output stops the run now, not after every request
  }
  if (args.json_path.empty()) return;

  nlohmann::json json;
  json["model"] = args.model;
  json["requests"] = nlohmann::json::array();
  for (size_t i = 0; i < ids.size(); ++i) {
    const RequestResult& result = results.at(ids[i]);
    nlohmann::json latencies = nlohmann::json::array();  // first: time to first token; then between tokens
    for (size_t t = 0; t < result.token_times_s.size(); ++t) {
      latencies.push_back(result.token_times_s[t] - (t ? result.token_times_s[t - 1] : 0.0));
    }
    nlohmann::json entry = {{"index", i},
                            {"prompt", prompts[i]},
                            {"prompt_tokens", prompt_tokens[i]},
                            {"generated_tokens", result.tokens.size()},
                            {"tokens", result.tokens},
                            {"text", result.text},
                            {"finish_reason", finish_reason_name(result.finish)},
                            {"time_to_first_token_s", result.time_to_first_token_s},
                            {"token_latencies_s", latencies},
                            {"preemptions", result.preemptions}};
    if (args.logprobs >= 0) entry["logprobs"] = outputs.at(ids[i]).logprobs;
    json["requests"].push_back(std::move(entry));
  }
  const EngineStats stats = engine.stats();
  json["engine"] = {{"steps", stats.steps},
                    {"prompt_tokens", stats.prompt_tokens},
                    {"generated_tokens", stats.generated_tokens},
                    {"preemptions", stats.preemptions},
                    {"kv_bytes", stats.kv_bytes},
                    {"kv_block_tokens", stats.kv_block_tokens},
                    {"max_batch_tokens", args.engine.max_batch_tokens}};
  write_output_file(args.json_path, dump_json(json, 2) + "\n", "--json");
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* command = app.add_subcommand(
      "generate",
      "generate for every prompt at once with the engine (KV cache, continuous batching); one prompt streams its "
      "text, several print each completed line as \"[i] text\" (i: the prompt's index)");
  command->add_option("--model,-m", args->model, "model: llama2.c .bin, Hugging Face dir, .gguf, or synthetic:NAME")
      ->required();
  command->add_option("--tokenizer", args->tokenizer, "tokenizer file (default: the model's own)");
  add_dtype_option(*command, args->dtype);
  command->add_option("--prompt,-p", args->prompts, "a prompt (repeat for several; empty: start from BOS)");
  command->add_option("--prompts", args->prompts_file, "a file with one prompt per line");
  command->add_option("-n,--max-tokens", args->max_tokens, "new tokens per prompt at most")->capture_default_str();
  command->add_option("--temp,--temperature", args->sampling.temperature, "0: greedy")->capture_default_str();
  command->add_option("--top-k", args->sampling.top_k, "keep the k most likely tokens (0: all)")->capture_default_str();
  command->add_option("--top-p", args->sampling.top_p, "nucleus sampling mass")->capture_default_str();
  command->add_option("--min-p", args->sampling.min_p, "drop tokens below min-p x the most likely")
      ->capture_default_str();
  command->add_option("--repetition-penalty", args->sampling.repetition_penalty,
                      "> 1 discourages tokens of the prompt and output (1: none)")
      ->capture_default_str();
  command->add_option("--presence-penalty", args->sampling.presence_penalty, "subtracted once per generated token")
      ->capture_default_str();
  command->add_option("--frequency-penalty", args->sampling.frequency_penalty,
                      "subtracted per occurrence in the output")
      ->capture_default_str();
  command->add_option("--seed", args->sampling.seed, "sampling seed; prompt i samples with seed + i")
      ->capture_default_str();
  command->add_option("--stop", args->stop, "a stop string (repeatable; not printed)");
  command->add_option("--logprobs", args->logprobs, "record each token's log-probability and the top K (JSON)");
  command->add_flag("--ignore-eos", args->ignore_eos, "keep generating after EOS");
  command->add_option("--max-batch-tokens", args->engine.max_batch_tokens, "tokens per engine step")
      ->capture_default_str();
  command->add_option("--kv-cache-tokens", args->engine.kv_cache_tokens, "KV cache capacity in tokens (0: automatic)")
      ->capture_default_str();
  add_kv_dtype_option(*command, args->engine.kv_dtype);
  command->add_option("--threads", args->threads, "threads (0: all cores)")->capture_default_str();
  command->add_flag("--ids", args->show_ids, "print token ids instead of text");
  command->add_option("--json", args->json_path, "write every request's tokens, text, finish reason and timings");
  command->callback([args] { generate_command(*args); });
}

}  // namespace jagged::cli
