// jagged's driver for llama.cpp as a live peer: runs the same requests jagged runs, through libllama, and reports
// on stdout as JSON. Built by scripts/setup_llamacpp.sh against the libllama it builds (never by jagged's CMake).
//
//   Both modes: --kv-type f16|f32 (the K/V cache's type; llama.cpp's default f16), --threads N (default 2).
//   llamacpp_driver prefill --model M.gguf --tokens T.json [--runs 5 --warmup 1 --outputs F.f32]
//     T.json: a JSON list of token-id lists, one per sequence. Three paths, each timed over whole runs:
//       one_batch_unified   every sequence in ONE llama_batch (distinct seq_ids), one KV buffer shared by all
//       one_batch_split_kv  the same batch, a KV buffer per sequence (kv_unified = false)
//       sequential          one sequence at a time (a fresh cache each)
//     --outputs writes the last-position logits of each sequence, [num_seqs, vocab] f32, from one_batch_unified.
//   llamacpp_driver decode --model M.gguf (--prompt-lengths 128,.. | --prompts P.json) --new-tokens 128[,..]
//                          [--seed 1 --kv-unified 0|1 --ids]
//     N requests arrive at once; the prompts go in one llama_batch, then one llama_batch per step holds the next
//     token of every running request; greedy (first maximum). Reports decode tokens/s, time to first token and
//     inter-token latency p50/p99; --ids adds each request's generated ids. EOS does not stop a request (the
//     benchmark and the parity test both want fixed lengths).
// Errors go to stderr with exit status 1; llama.cpp's own log is dropped except its errors.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "llama.h"

namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;
using Sequences = std::vector<std::vector<llama_token>>;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// This process's peak resident set (VmHWM, bytes). Not getrusage: a child spawned with vfork semantics
// (posix_spawn) inherits its parent's maximum across exec, so jagged's size would read as llama.cpp's.
int64_t peak_rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;  // "VmHWM:   1234 kB"
  }
  return 0;
}

struct Options {
  std::string mode;
  std::string model;
  std::string tokens_path;
  std::string prompts_path;
  std::string outputs_path;
  std::vector<int> prompt_lengths;
  std::vector<int> new_tokens;
  int threads = 2;
  int runs = 5;
  int warmup = 1;
  int kv_unified = 0;
  bool kv_f32 = false;
  uint64_t seed = 1;
  bool ids = false;
};

std::vector<int> parse_int_list(const std::string& text, const std::string& flag) {
  std::vector<int> values;
  std::stringstream stream(text);
  for (std::string item; std::getline(stream, item, ',');) {
    size_t used = 0;
    int value = -1;
    try {
      value = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || value < 0) throw std::runtime_error(flag + ": '" + item + "' is not a count");
    values.push_back(value);
  }
  if (values.empty()) throw std::runtime_error(flag + ": empty list");
  return values;
}

Options parse_options(int argc, char** argv) {
  if (argc < 2) throw std::runtime_error("usage: llamacpp_driver prefill|decode --model FILE ... (see the source)");
  Options options;
  options.mode = argv[1];
  if (options.mode != "prefill" && options.mode != "decode") {
    throw std::runtime_error("unknown mode '" + options.mode + "' (prefill or decode)");
  }
  for (int i = 2; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--ids") {
      options.ids = true;
      continue;
    }
    if (i + 1 >= argc) throw std::runtime_error(flag + " needs a value");
    const std::string value = argv[++i];
    const auto number = [&] { return parse_int_list(value, flag).at(0); };
    if (flag == "--model") options.model = value;
    else if (flag == "--tokens") options.tokens_path = value;
    else if (flag == "--prompts") options.prompts_path = value;
    else if (flag == "--outputs") options.outputs_path = value;
    else if (flag == "--prompt-lengths") options.prompt_lengths = parse_int_list(value, flag);
    else if (flag == "--new-tokens") options.new_tokens = parse_int_list(value, flag);
    else if (flag == "--threads") options.threads = number();
    else if (flag == "--runs") options.runs = number();
    else if (flag == "--warmup") options.warmup = number();
    else if (flag == "--kv-unified") options.kv_unified = number();
    else if (flag == "--kv-type" && (value == "f16" || value == "f32")) options.kv_f32 = value == "f32";
    else if (flag == "--seed") options.seed = static_cast<uint64_t>(number());
    else throw std::runtime_error("unknown option " + flag);
  }
  if (options.model.empty()) throw std::runtime_error("--model is required");
  if (options.threads < 1 || options.runs < 1) throw std::runtime_error("--threads and --runs must be >= 1");
  return options;
}

Sequences read_sequences(const std::string& path, int32_t vocab_size) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  const Json json = Json::parse(in);
  Sequences sequences = json.get<Sequences>();
  if (sequences.empty()) throw std::runtime_error(path + ": no sequences");
  for (const auto& sequence : sequences) {
    if (sequence.empty()) throw std::runtime_error(path + ": an empty sequence (llama.cpp needs at least one token)");
    for (const llama_token id : sequence) {
      if (id < 0 || id >= vocab_size) {
        throw std::runtime_error(path + ": token id " + std::to_string(id) + " outside the model's vocabulary of " +
                                 std::to_string(vocab_size));
      }
    }
  }
  return sequences;
}

// llama.cpp logs to stderr by default; keep only errors, so stdout is the JSON report and stderr stays readable.
void quiet_log(ggml_log_level level, const char* text, void*) {
  if (level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
}

struct Model {
  llama_model* model = nullptr;
  explicit Model(const std::string& path) {
    llama_model_params params = llama_model_default_params();
    model = llama_model_load_from_file(path.c_str(), params);
    if (model == nullptr) throw std::runtime_error(path + ": llama.cpp could not load the model (see its error above)");
  }
  ~Model() { llama_model_free(model); }
  int32_t vocab_size() const { return llama_vocab_n_tokens(llama_model_get_vocab(model)); }
};

// A context sized for `num_seqs` sequences of at most `longest` tokens (`total` tokens together), taking batches of
// up to `batch_tokens` tokens.
struct Context {
  llama_context* context = nullptr;
  bool kv_unified = false;
  Context(const Model& model, int num_seqs, int longest, int total, int batch_tokens, bool unified,
          const Options& options) {
    if (num_seqs > static_cast<int>(llama_max_parallel_sequences())) {
      throw std::runtime_error(std::to_string(num_seqs) + " sequences: llama.cpp holds at most " +
                               std::to_string(llama_max_parallel_sequences()) + " in one context");
    }
    llama_context_params params = llama_context_default_params();
    // A split cache gives each sequence n_ctx / n_seq_max cells (padded to 256); a unified one shares n_ctx.
    params.n_ctx = static_cast<uint32_t>(unified ? total : num_seqs * longest);
    params.n_batch = static_cast<uint32_t>(std::max(batch_tokens, 1));
    params.n_seq_max = static_cast<uint32_t>(num_seqs);
    params.kv_unified = unified;
    params.n_threads = options.threads;
    params.n_threads_batch = options.threads;
    if (options.kv_f32) params.type_k = params.type_v = GGML_TYPE_F32;  // llama.cpp's default is f16
    params.no_perf = true;
    context = llama_init_from_model(model.model, params);
    if (context == nullptr) throw std::runtime_error("llama.cpp could not create a context (see its error above)");
    kv_unified = unified;
  }
  ~Context() { llama_free(context); }
  void clear() const { llama_memory_clear(llama_get_memory(context), true); }
};

// A llama_batch that frees itself.
struct Batch {
  llama_batch batch;
  explicit Batch(int capacity) : batch(llama_batch_init(std::max(capacity, 1), 0, 1)) {}
  ~Batch() { llama_batch_free(batch); }
  void clear() { batch.n_tokens = 0; }
  void add(llama_token token, llama_pos position, llama_seq_id seq, bool logits) {
    const int i = batch.n_tokens++;
    batch.token[i] = token;
    batch.pos[i] = position;
    batch.n_seq_id[i] = 1;
    batch.seq_id[i][0] = seq;
    batch.logits[i] = logits ? 1 : 0;
  }
};

void decode_or_throw(const Context& context, const Batch& batch) {
  const int32_t status = llama_decode(context.context, batch.batch);
  if (status != 0) throw std::runtime_error("llama_decode failed with status " + std::to_string(status));
  llama_synchronize(context.context);
}

int total_tokens(const Sequences& sequences) {
  int total = 0;
  for (const auto& sequence : sequences) total += static_cast<int>(sequence.size());
  return total;
}

int longest(const Sequences& sequences) {
  size_t longest = 0;
  for (const auto& sequence : sequences) longest = std::max(longest, sequence.size());
  return static_cast<int>(longest);
}

// All sequences in `batch`, logits at each one's last position; returns the batch index of each last position.
std::vector<int> fill_prompts(Batch& batch, const Sequences& sequences) {
  batch.clear();
  std::vector<int> last_rows;
  for (size_t seq = 0; seq < sequences.size(); ++seq) {
    const auto& sequence = sequences[seq];
    for (size_t pos = 0; pos < sequence.size(); ++pos) {
      batch.add(sequence[pos], static_cast<llama_pos>(pos), static_cast<llama_seq_id>(seq), pos + 1 == sequence.size());
    }
    last_rows.push_back(batch.batch.n_tokens - 1);
  }
  return last_rows;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : 0.5 * (values[mid - 1] + values[mid]);
}

double percentile(std::vector<double> values, double fraction) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const size_t index = std::min(values.size() - 1, static_cast<size_t>(fraction * static_cast<double>(values.size())));
  return values[index];
}

Json timed_path(const std::vector<double>& run_seconds, bool kv_unified, int num_batches) {
  return {{"median_seconds", median(run_seconds)}, {"run_seconds", run_seconds}, {"kv_unified", kv_unified},
          {"llama_batches_per_run", num_batches}};
}

Json prefill(const Options& options, const Model& model) {
  if (options.tokens_path.empty()) throw std::runtime_error("prefill needs --tokens FILE");
  const Sequences sequences = read_sequences(options.tokens_path, model.vocab_size());
  const int num_seqs = static_cast<int>(sequences.size());
  const int total = total_tokens(sequences);
  Json paths = Json::object();
  std::vector<float> last_logits;

  for (const bool unified : {true, false}) {
    const Context context(model, num_seqs, longest(sequences), total, total, unified, options);
    Batch batch(total);
    const std::vector<int> last_rows = fill_prompts(batch, sequences);
    std::vector<double> runs;
    for (int run = 0; run < options.warmup + options.runs; ++run) {
      context.clear();
      const auto start = Clock::now();
      decode_or_throw(context, batch);
      if (run >= options.warmup) runs.push_back(seconds_since(start));
    }
    if (unified) {
      const int32_t vocab = model.vocab_size();
      for (const int row : last_rows) {
        const float* logits = llama_get_logits_ith(context.context, row);
        last_logits.insert(last_logits.end(), logits, logits + vocab);
      }
    }
    paths[unified ? "one_batch_unified" : "one_batch_split_kv"] = timed_path(runs, unified, 1);
  }

  {
    const Context context(model, 1, longest(sequences), longest(sequences), longest(sequences), true, options);
    Batch batch(longest(sequences));
    std::vector<double> runs;
    for (int run = 0; run < options.warmup + options.runs; ++run) {
      double seconds = 0.0;
      for (const auto& sequence : sequences) {
        fill_prompts(batch, Sequences{sequence});
        context.clear();
        const auto start = Clock::now();
        decode_or_throw(context, batch);
        seconds += seconds_since(start);
      }
      if (run >= options.warmup) runs.push_back(seconds);
    }
    paths["sequential"] = timed_path(runs, true, num_seqs);
  }

  if (!options.outputs_path.empty()) {
    std::ofstream out(options.outputs_path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(last_logits.data()),
              static_cast<std::streamsize>(last_logits.size() * sizeof(float)));
    if (!out) throw std::runtime_error(options.outputs_path + ": could not write the logits");
  }
  return {{"mode", "prefill"}, {"num_seqs", num_seqs}, {"real_tokens", total}, {"paths", paths}};
}

llama_token greedy(const Context& context, int row, int32_t vocab) {
  const float* logits = llama_get_logits_ith(context.context, row);
  return static_cast<llama_token>(std::max_element(logits, logits + vocab) - logits);
}

Json decode(const Options& options, const Model& model) {
  const int32_t vocab = model.vocab_size();
  Sequences prompts;
  if (!options.prompts_path.empty()) {
    prompts = read_sequences(options.prompts_path, vocab);
  } else {
    if (options.prompt_lengths.empty()) throw std::runtime_error("decode needs --prompt-lengths or --prompts");
    std::mt19937_64 rng(options.seed);
    std::uniform_int_distribution<llama_token> id(0, vocab - 1);
    for (const int length : options.prompt_lengths) {
      if (length < 1) throw std::runtime_error("--prompt-lengths: a prompt needs at least one token");
      std::vector<llama_token> prompt(static_cast<size_t>(length));
      for (auto& token : prompt) token = id(rng);
      prompts.push_back(std::move(prompt));
    }
  }
  const int num_seqs = static_cast<int>(prompts.size());
  std::vector<int> new_tokens = options.new_tokens;
  if (new_tokens.size() == 1) new_tokens.assign(static_cast<size_t>(num_seqs), new_tokens[0]);
  if (static_cast<int>(new_tokens.size()) != num_seqs) {
    throw std::runtime_error("--new-tokens: give one count, or one per request (" + std::to_string(num_seqs) + ")");
  }
  int context_longest = 0, context_total = 0;
  for (int seq = 0; seq < num_seqs; ++seq) {
    const int length = static_cast<int>(prompts[static_cast<size_t>(seq)].size()) + new_tokens[static_cast<size_t>(seq)];
    context_longest = std::max(context_longest, length);
    context_total += length;
  }
  const bool unified = options.kv_unified != 0;
  const int prompt_total = total_tokens(prompts);
  const Context context(model, num_seqs, context_longest, context_total, std::max(prompt_total, num_seqs), unified,
                        options);
  Batch batch(std::max(prompt_total, num_seqs));

  // Warm-up outside the timing: one short decode, then a fresh cache.
  fill_prompts(batch, Sequences{std::vector<llama_token>{prompts[0][0]}});
  decode_or_throw(context, batch);
  context.clear();

  Sequences generated(static_cast<size_t>(num_seqs));
  std::vector<double> first_token_seconds(static_cast<size_t>(num_seqs), 0.0);
  std::vector<double> last_token_at(static_cast<size_t>(num_seqs), 0.0);
  std::vector<double> inter_token_seconds;
  std::vector<int> rows = fill_prompts(batch, prompts);
  const auto start = Clock::now();
  decode_or_throw(context, batch);
  int steps = 0;
  double decode_start = 0.0;
  int64_t decode_tokens = 0;
  while (true) {
    // Sample from the last batch, then build the next one from the requests still running.
    const double now = seconds_since(start);
    std::vector<int> running;
    for (int seq = 0; seq < num_seqs; ++seq) {
      auto& output = generated[static_cast<size_t>(seq)];
      if (rows[static_cast<size_t>(seq)] < 0) continue;
      output.push_back(greedy(context, rows[static_cast<size_t>(seq)], vocab));
      if (output.size() == 1) {
        first_token_seconds[static_cast<size_t>(seq)] = now;
      } else {
        inter_token_seconds.push_back(now - last_token_at[static_cast<size_t>(seq)]);
        ++decode_tokens;
      }
      last_token_at[static_cast<size_t>(seq)] = now;
      if (static_cast<int>(output.size()) < new_tokens[static_cast<size_t>(seq)]) running.push_back(seq);
    }
    if (steps == 0) decode_start = now;
    if (running.empty()) break;
    batch.clear();
    std::fill(rows.begin(), rows.end(), -1);
    for (const int seq : running) {
      const auto& prompt = prompts[static_cast<size_t>(seq)];
      const auto& output = generated[static_cast<size_t>(seq)];
      rows[static_cast<size_t>(seq)] = batch.batch.n_tokens;
      batch.add(output.back(), static_cast<llama_pos>(prompt.size() + output.size() - 1), seq, true);
    }
    decode_or_throw(context, batch);
    ++steps;
  }
  const double total_seconds = seconds_since(start);
  const double decode_seconds = total_seconds - decode_start;
  int64_t generated_total = 0;
  for (const auto& output : generated) generated_total += static_cast<int64_t>(output.size());

  Json report = {{"mode", "decode"},
                 {"num_requests", num_seqs},
                 {"kv_unified", unified},
                 {"prompt_tokens", prompt_total},
                 {"generated_tokens", generated_total},
                 {"decode_steps", steps},
                 {"prefill_seconds", decode_start},
                 {"decode_seconds", decode_seconds},
                 {"total_seconds", total_seconds},
                 {"decode_tokens_per_second", decode_seconds > 0 ? static_cast<double>(decode_tokens) / decode_seconds : 0.0},
                 {"generated_tokens_per_second", static_cast<double>(generated_total) / total_seconds},
                 {"time_to_first_token_seconds", {{"p50", percentile(first_token_seconds, 0.5)},
                                                  {"p99", percentile(first_token_seconds, 0.99)}}},
                 {"inter_token_seconds", {{"p50", percentile(inter_token_seconds, 0.5)},
                                          {"p99", percentile(inter_token_seconds, 0.99)}}}};
  if (options.ids) report["generated_ids"] = generated;
  return report;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options options = parse_options(argc, argv);
    llama_log_set(quiet_log, nullptr);
    llama_backend_init();
    Json report;
    {
      const Model model(options.model);
      report = options.mode == "prefill" ? prefill(options, model) : decode(options, model);
    }
    llama_backend_free();
    report["engine"] = "llama.cpp";
    report["threads"] = options.threads;
    report["kv_type"] = options.kv_f32 ? "f32" : "f16";
    report["system_info"] = llama_print_system_info();
    report["peak_rss_bytes"] = peak_rss_bytes();
    std::cout << report.dump(2) << "\n";
    return 0;
  } catch (const std::exception& error) {
    std::cerr << "llamacpp_driver: " << error.what() << "\n";
    return 1;
  }
}
