#include "jagged/decode_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <numeric>
#include <random>
#include <thread>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "jagged/error.h"
#include "jagged/kv_cache.h"
#include "jagged/machine.h"
#include "jagged/memory.h"
#include "jagged/threads.h"
#include "jagged/workload.h"

#include "jagged/llamacpp_peer.h"
#include "jagged/model_files.h"

namespace jagged {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Nearest-rank percentile of unsorted values (0 when empty).
double percentile(std::vector<double> values, double fraction) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const size_t rank = static_cast<size_t>(std::ceil(fraction * static_cast<double>(values.size())));
  return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

LatencySummary summarise(const std::vector<double>& values) {
  LatencySummary summary;
  summary.count = static_cast<int64_t>(values.size());
  if (values.empty()) return summary;
  summary.p50 = percentile(values, 0.50);
  summary.p99 = percentile(values, 0.99);
  summary.mean = std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
  return summary;
}

void check_range(const char* name, int64_t low, int64_t high, int64_t least) {
  if (low < least || low > high) {
    throw InvalidArgument(concat("decode bench: need ", least, " <= min ", name, " <= max ", name, ", got ", low, " and ",
                                 high));
  }
}

void validate(const LlamaConfig& config, const DecodeBenchOptions& options) {
  if (options.concurrency.empty()) throw InvalidArgument("decode bench: no concurrency levels given");
  for (const int64_t level : options.concurrency) {
    if (level < 1) throw InvalidArgument(concat("decode bench: concurrency must be >= 1, got ", level));
  }
  check_range("prompt length", options.min_prompt, options.max_prompt, 1);
  check_range("new tokens", options.min_new, options.max_new, 1);
  if (options.max_prompt + options.max_new > config.context_length) {
    throw InvalidArgument(concat("decode bench: the longest prompt (", options.max_prompt, ") plus the longest output (",
                                 options.max_new, ") exceeds the model's context length ", config.context_length));
  }
  if (!(options.rate >= 0.0) || !std::isfinite(options.rate)) {
    throw InvalidArgument(concat("decode bench: rate must be a finite number >= 0 (0: all at once), got ", options.rate));
  }
  if (options.probe_prompt < 1 || options.probe_steps < 1 ||
      options.probe_prompt + options.probe_steps + 1 > config.context_length) {
    throw InvalidArgument(concat("decode bench: the step probe needs a prompt >= 1 and steps >= 1 within the context ",
                                 config.context_length, ", got ", options.probe_prompt, " and ", options.probe_steps));
  }
}

// Enough KV capacity for every request of the workload at once (each sequence's last block partly filled), so
// the benchmark measures batching, not preemption. The block size is read from a first, minimal engine.
EngineOptions sized_for(const LlamaModel& model, const DecodeWorkload& workload, EngineOptions options) {
  if (options.kv_cache_tokens > 0 || options.kv_cache_bytes > 0) return options;
  EngineOptions probe = options;
  probe.kv_cache_tokens = model.config().context_length;
  const int64_t block_tokens = Engine(model, nullptr, probe).stats().kv_block_tokens;
  int64_t tokens = 0;
  for (size_t i = 0; i < workload.prompts.size(); ++i) {
    const int64_t length = static_cast<int64_t>(workload.prompts[i].size()) + workload.new_tokens[i];
    tokens += (length + block_tokens - 1) / block_tokens * block_tokens;
  }
  options.kv_cache_tokens = std::max(tokens, model.config().context_length);
  return options;
}

}  // namespace

DecodeWorkload draw_decode_workload(const LlamaConfig& config, const DecodeBenchOptions& options, int64_t num_requests) {
  validate(config, options);
  if (num_requests < 1) throw InvalidArgument(concat("decode bench: need at least one request, got ", num_requests));
  const std::vector<int64_t> prompt_lengths =
      uniform_lengths(num_requests, options.min_prompt, options.max_prompt, options.seed);
  const std::vector<int64_t> new_tokens = uniform_lengths(num_requests, options.min_new, options.max_new, options.seed + 1);
  const NestedTensor ids = random_token_batch(prompt_lengths, config.vocab_size, options.seed + 2);
  DecodeWorkload workload;
  const int32_t* id = ids.values().data<int32_t>();
  for (const int64_t length : prompt_lengths) {
    workload.prompts.emplace_back(id, id + length);
    id += length;
  }
  workload.new_tokens = new_tokens;
  workload.arrival_s.assign(static_cast<size_t>(num_requests), 0.0);
  if (options.rate > 0.0) {
    std::mt19937_64 rng(options.seed + 3);
    std::exponential_distribution<double> gap(options.rate);
    for (size_t i = 1; i < workload.arrival_s.size(); ++i) workload.arrival_s[i] = workload.arrival_s[i - 1] + gap(rng);
  }
  return workload;
}

DecodeWorkload padded_static_workload(const DecodeWorkload& workload, int64_t vocab_size, uint64_t seed) {
  size_t longest_prompt = 0;
  for (const auto& prompt : workload.prompts) longest_prompt = std::max(longest_prompt, prompt.size());
  const int64_t longest_output = *std::max_element(workload.new_tokens.begin(), workload.new_tokens.end());
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> filler(0, static_cast<int32_t>(vocab_size - 1));
  DecodeWorkload padded;
  for (const auto& prompt : workload.prompts) {
    std::vector<int32_t> ids = prompt;
    while (ids.size() < longest_prompt) ids.push_back(filler(rng));
    padded.prompts.push_back(std::move(ids));
  }
  padded.new_tokens.assign(workload.prompts.size(), longest_output);
  padded.arrival_s.assign(workload.prompts.size(), 0.0);
  return padded;
}

DecodeRunResult run_decode_workload(const LlamaModel& model, const DecodeWorkload& workload,
                                    const EngineOptions& engine_options, const std::string& mode,
                                    const std::vector<int64_t>& useful_tokens) {
  const size_t num_requests = workload.prompts.size();
  StageProfile step_profile, decode_profile;
  EngineOptions options = sized_for(model, workload, engine_options);
  options.profile = &step_profile;
  Engine engine(model, nullptr, options);
  DecodeRunResult run;
  run.mode = mode;
  run.num_requests = static_cast<int64_t>(num_requests);
  const std::vector<int64_t>& useful = useful_tokens.empty() ? workload.new_tokens : useful_tokens;
  run.useful_tokens = std::accumulate(useful.begin(), useful.end(), int64_t{0});

  std::vector<RequestId> ids(num_requests);
  std::vector<double> added_s(num_requests);  // when add_request ran (the engine's times start there)
  std::map<RequestId, size_t> index_of;
  std::vector<double> time_to_first_token, inter_token;
  int64_t peak_blocks = 0;
  size_t next = 0, finished = 0;
  const Clock::time_point start = Clock::now();
  while (finished < num_requests) {
    const double now = seconds_since(start);
    for (; next < num_requests && workload.arrival_s[next] <= now; ++next) {
      GenerationRequest request;
      request.prompt = workload.prompts[next];
      request.max_tokens = workload.new_tokens[next];
      request.ignore_eos = true;
      added_s[next] = seconds_since(start);
      ids[next] = engine.add_request(std::move(request));
      index_of[ids[next]] = next;
    }
    if (!engine.has_work()) {
      if (next >= num_requests) throw Error("decode bench: the engine stopped before every request finished");
      std::this_thread::sleep_for(std::chrono::duration<double>(workload.arrival_s[next] - seconds_since(start)));
      continue;
    }
    const int64_t prompt_before = engine.stats().prompt_tokens;
    step_profile.clear();
    const Clock::time_point step_start = Clock::now();
    const std::vector<RequestEvent> events = engine.step();
    const double step_seconds = seconds_since(step_start);
    const EngineStats stats = engine.stats();
    peak_blocks = std::max(peak_blocks, stats.kv_blocks_used);
    int64_t step_tokens = 0;
    for (const RequestEvent& event : events) step_tokens += static_cast<int64_t>(event.tokens.size());
    if (stats.prompt_tokens == prompt_before) {
      ++run.decode_steps;
      run.decode_tokens += step_tokens;
      run.decode_seconds += step_seconds;
      for (const auto& [stage, seconds] : step_profile.stages()) decode_profile.add(stage, seconds);
    }
    for (const RequestEvent& event : events) {
      if (event.finish == FinishReason::none) continue;
      const size_t i = index_of.at(event.id);
      const RequestResult result = engine.result(event.id);
      ++finished;
      run.generated_tokens += static_cast<int64_t>(result.tokens.size());
      if (result.token_times_s.empty()) continue;
      time_to_first_token.push_back(added_s[i] - workload.arrival_s[i] + result.token_times_s.front());
      for (size_t t = 1; t < result.token_times_s.size(); ++t) {
        inter_token.push_back(result.token_times_s[t] - result.token_times_s[t - 1]);
      }
    }
  }
  run.seconds = seconds_since(start);
  const EngineStats stats = engine.stats();
  run.steps = stats.steps;
  run.prompt_tokens = stats.prompt_tokens;
  run.preemptions = stats.preemptions;
  run.kv_cache_bytes = stats.kv_bytes;
  run.kv_peak_bytes = stats.kv_blocks_total > 0 ? peak_blocks * (stats.kv_bytes / stats.kv_blocks_total) : 0;
  run.tokens_per_second = run.useful_tokens / run.seconds;
  run.decode_tokens_per_second = run.decode_seconds > 0.0 ? run.decode_tokens / run.decode_seconds : 0.0;
  for (const auto& [stage, seconds] : decode_profile.stages()) {
    run.decode_step_stages.emplace_back(stage, seconds / static_cast<double>(std::max<int64_t>(run.decode_steps, 1)));
  }
  run.time_to_first_token_s = summarise(time_to_first_token);
  run.inter_token_s = summarise(inter_token);
  run.peak_rss_bytes = process_peak_rss_bytes();
  return run;
}

DecodeStepProbe measure_decode_step(const LlamaModel& model, const DecodeBenchOptions& options) {
  const LlamaConfig& config = model.config();
  const NestedTensor ids = random_token_batch({options.probe_prompt}, config.vocab_size, options.seed + 4);
  GenerationRequest request;
  request.prompt.assign(ids.values().data<int32_t>(), ids.values().data<int32_t>() + options.probe_prompt);
  request.max_tokens = options.probe_steps + 1;  // the first token comes from the prefill step
  request.ignore_eos = true;
  EngineOptions engine_options = options.engine;
  engine_options.kv_cache_tokens = options.probe_prompt + options.probe_steps + 256;
  engine_options.kv_cache_bytes = 0;
  Engine engine(model, nullptr, engine_options);
  engine.add_request(std::move(request));
  DecodeStepProbe probe;
  probe.weight_bytes = model.projection_bytes();  // not the embedding: a step reads a row per token
  // A bandwidth measurement after every few decode steps: the VM's bandwidth drifts by tens of percent within a
  // run, so the two medians come from the same stretch of time.
  constexpr int64_t kRoundSteps = 4;
  const MemoryReadProbe bandwidth_probe(num_threads(), int64_t{256} << 20);
  std::vector<double> step_seconds, bandwidths;
  while (engine.has_work()) {
    const int64_t prompt_before = engine.stats().prompt_tokens;
    const Clock::time_point start = Clock::now();
    engine.step();
    const double seconds = seconds_since(start);
    if (engine.stats().prompt_tokens != prompt_before) continue;  // the prefill step
    step_seconds.push_back(seconds);
    if (static_cast<int64_t>(step_seconds.size()) % kRoundSteps == 0 || !engine.has_work()) {
      bandwidths.push_back(bandwidth_probe.measure(2));
    }
  }
  probe.step_seconds = percentile(step_seconds, 0.5);
  probe.bandwidth_bytes_per_second = percentile(bandwidths, 0.5);
  probe.stream_seconds = static_cast<double>(probe.weight_bytes) / probe.bandwidth_bytes_per_second;
  probe.ratio = probe.step_seconds / probe.stream_seconds;
  return probe;
}

namespace {

nlohmann::json stages_json(const std::vector<std::pair<std::string, double>>& stages) {
  nlohmann::json json = nlohmann::json::object();
  for (const auto& [stage, seconds] : stages) json[stage] = seconds;
  return json;
}

// llama.cpp on the same prompts and output lengths (greedy, all at once, one llama_batch per step), through the
// llama.cpp peer when llama.cpp is built; otherwise a result whose note says why not.
DecodeRunResult run_llamacpp(const DecodeWorkload& workload, const DecodeBenchOptions& options,
                             const std::filesystem::path& gguf) {
  DecodeRunResult run;
  run.mode = "llama.cpp";
  run.num_requests = static_cast<int64_t>(workload.prompts.size());
  if (!llamacpp_available()) {
    run.note = "not available: llama.cpp is not built (run scripts/setup_llamacpp.sh)";
    return run;
  }
  if (options.rate > 0.0) run.note = "all requests at once (the llama.cpp driver has no arrival rate)";
  LlamaCppDecodeOptions peer_options;
  peer_options.threads = num_threads();
  const LlamaCppDecodeResult peer = run_llamacpp_decode(gguf, workload.prompts, workload.new_tokens, peer_options);
  run.prompt_tokens = peer.prompt_tokens;
  run.generated_tokens = peer.generated_tokens;
  run.useful_tokens = peer.generated_tokens;
  run.steps = peer.decode_steps;
  run.seconds = peer.prefill_seconds + peer.decode_seconds;
  run.tokens_per_second = peer.generated_tokens_per_second;
  run.decode_seconds = peer.decode_seconds;
  run.decode_tokens_per_second = peer.decode_tokens_per_second;
  run.time_to_first_token_s = {run.num_requests, peer.time_to_first_token_p50, peer.time_to_first_token_p99, 0.0};
  run.inter_token_s = {0, peer.inter_token_p50, peer.inter_token_p99, 0.0};
  run.peak_rss_bytes = peer.peak_rss_bytes;
  return run;
}

}  // namespace

DecodeBenchReport run_decode_bench(const LlamaModel& model, const DecodeBenchOptions& options) {
  const LlamaConfig& config = model.config();
  validate(config, options);
  const auto progress = [&](const std::string& line) {
    if (options.progress) options.progress(line);
  };
  DecodeBenchReport report;
  report.threads = num_threads();
  report.weights = std::string(ops::weight_type_name(model.weight_type()));
  report.linear_path = ops::linear_path(model.weight_type());
  report.projection_types = ops::describe_weight_types(model.projection_types());
  report.options = options;
  report.options.progress = nullptr;
  report.kv_bytes_per_token = KvCache::bytes_per_token(config, options.engine.kv_dtype);

  std::filesystem::path gguf = options.llamacpp_gguf;
  const bool exported = gguf.empty();
  if (options.compare_llamacpp && llamacpp_available() && exported) {
    progress("writing the model as GGUF for llama.cpp");
    gguf = std::filesystem::temp_directory_path() / concat("jagged-decode-bench-", ::getpid(), ".gguf");
    export_gguf(model, nullptr, gguf);
  }
  for (const int64_t level : options.concurrency) {
    DecodeBenchPoint point;
    point.concurrency = level;
    const DecodeWorkload workload = draw_decode_workload(config, options, level);
    for (const auto& prompt : workload.prompts) point.prompt_lengths.push_back(static_cast<int64_t>(prompt.size()));
    point.new_tokens = workload.new_tokens;
    progress(concat("N=", level, ": continuous batching"));
    point.continuous = run_decode_workload(model, workload, options.engine, "continuous");
    if (options.padded) {
      progress(concat("N=", level, ": padded static batch"));
      point.padded = run_decode_workload(model, padded_static_workload(workload, config.vocab_size, options.seed + 5),
                                         options.engine, "padded_static", workload.new_tokens);
    }
    if (options.compare_llamacpp) {
      progress(concat("N=", level, ": llama.cpp"));
      point.llamacpp = run_llamacpp(workload, options, gguf);
    }
    report.points.push_back(std::move(point));
  }
  if (exported && !gguf.empty()) std::filesystem::remove(gguf);
  if (options.step_probe) {
    progress("one request's decode step and the memory bandwidth");
    report.step_probe = measure_decode_step(model, options);
  }
  return report;
}

namespace {

nlohmann::json latency_json(const LatencySummary& latency) {
  return {{"count", latency.count}, {"p50", latency.p50}, {"p99", latency.p99}, {"mean", latency.mean}};
}

nlohmann::json run_json(const DecodeRunResult& run) {
  nlohmann::json json = {
      {"mode", run.mode},
      {"num_requests", run.num_requests},
      {"prompt_tokens", run.prompt_tokens},
      {"generated_tokens", run.generated_tokens},
      {"useful_tokens", run.useful_tokens},
      {"steps", run.steps},
      {"seconds", run.seconds},
      {"tokens_per_second", run.tokens_per_second},
      {"decode_steps", run.decode_steps},
      {"decode_tokens", run.decode_tokens},
      {"decode_seconds", run.decode_seconds},
      {"decode_step_stages_s", stages_json(run.decode_step_stages)},
      {"decode_tokens_per_second", run.decode_tokens_per_second},
      {"time_to_first_token_s", latency_json(run.time_to_first_token_s)},
      {"inter_token_s", latency_json(run.inter_token_s)},
      {"kv_cache_bytes", run.kv_cache_bytes},
      {"kv_peak_bytes", run.kv_peak_bytes},
      {"preemptions", run.preemptions},
      {"peak_rss_bytes", run.peak_rss_bytes},
  };
  if (!run.note.empty()) json["note"] = run.note;
  return json;
}

}  // namespace

std::string decode_bench_json(const DecodeBenchReport& report, const std::string& model, const std::string& command) {
  const DecodeBenchOptions& options = report.options;
  nlohmann::json json;
  json["benchmark"] = "decode";
  json["model"] = model;
  json["command"] = command;
  json["threads"] = report.threads;
  json["weights"] = report.weights;
  json["linear_path"] = report.linear_path;
  json["projection_types"] = report.projection_types;
  json["workload"] = {{"prompt_tokens", {options.min_prompt, options.max_prompt}},
                      {"new_tokens", {options.min_new, options.max_new}},
                      {"rate_requests_per_second", options.rate},
                      {"seed", options.seed},
                      {"max_batch_tokens", options.engine.max_batch_tokens},
                      {"kv_cache_tokens", options.engine.kv_cache_tokens}};
  json["kv_bytes_per_token"] = report.kv_bytes_per_token;
  json["padded_static_method"] =
      "the same engine with every prompt padded to the longest and every output decoded to the longest (EOS "
      "ignored): the cost of a padded static batch; useful tokens are those each request asked for";
  json["points"] = nlohmann::json::array();
  for (const DecodeBenchPoint& point : report.points) {
    nlohmann::json entry = {{"concurrency", point.concurrency},
                            {"prompt_lengths", point.prompt_lengths},
                            {"new_tokens", point.new_tokens},
                            {"continuous", run_json(point.continuous)}};
    if (point.padded) {
      entry["padded_static"] = run_json(*point.padded);
      entry["continuous_over_padded"] = point.continuous.tokens_per_second / point.padded->tokens_per_second;
    }
    if (point.llamacpp) {
      entry["llamacpp"] = run_json(*point.llamacpp);
      if (point.llamacpp->tokens_per_second > 0.0) {
        entry["continuous_over_llamacpp"] = point.continuous.tokens_per_second / point.llamacpp->tokens_per_second;
      }
    }
    json["points"].push_back(std::move(entry));
  }
  if (report.step_probe) {
    const DecodeStepProbe& probe = *report.step_probe;
    json["decode_step"] = {{"step_seconds", probe.step_seconds},
                           {"weight_bytes", probe.weight_bytes},
                           {"bandwidth_bytes_per_second", probe.bandwidth_bytes_per_second},
                           {"stream_weights_seconds", probe.stream_seconds},
                           {"step_over_stream", probe.ratio}};
  }
  return json.dump(2);
}

}  // namespace jagged
