#include "bench_decode.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "common.h"
#include "jagged/threads.h"

namespace jagged::cli {
namespace {

std::string format(const char* pattern, double a, double b = 0.0) {
  char text[64];
  std::snprintf(text, sizeof(text), pattern, a, b);
  return text;
}

void print_run(const std::string& label, const DecodeRunResult& run) {
  if (!run.note.empty() && run.useful_tokens == 0) {
    std::cout << "      " << label << ": " << run.note << "\n";
    return;
  }
  std::cout << "      " << std::left;
  std::cout.width(14);
  std::cout << label << std::right << format("%9.1f", run.tokens_per_second) << format("%11.1f", run.decode_tokens_per_second)
            << format("   %7.3f /%7.3f", run.time_to_first_token_s.p50, run.time_to_first_token_s.p99)
            << format("   %7.1f /%7.1f", run.inter_token_s.p50 * 1e3, run.inter_token_s.p99 * 1e3)
            << format("   %7.1f /%7.1f", run.kv_peak_bytes / 1048576.0, run.kv_cache_bytes / 1048576.0)
            << format("  %6.0f", static_cast<double>(run.steps)) << format("  %7.0f", static_cast<double>(run.prompt_tokens))
            << format("  %7.0f", static_cast<double>(run.generated_tokens));
  if (!run.note.empty()) std::cout << "  (" << run.note << ")";
  std::cout << "\n";
  if (run.decode_step_stages.empty()) return;
  double total = 0.0;
  for (const auto& stage : run.decode_step_stages) total += stage.second;
  std::cout << "          a decode step, ms (" << format("%.1f", total * 1e3) << " in stages):";
  for (const auto& [stage, seconds] : run.decode_step_stages) std::cout << " " << stage << format(" %.2f", seconds * 1e3);
  std::cout << "\n";
}

void print_report(const DecodeBenchReport& report, const std::string& model) {
  const DecodeBenchOptions& options = report.options;
  std::cout << "decode benchmark: " << model << " (weights " << report.projection_types << "), " << report.threads
            << " threads, prompts " << options.min_prompt << ".." << options.max_prompt << " tokens, outputs "
            << options.min_new << ".." << options.max_new << " tokens, "
            << (options.rate > 0.0 ? concat("arriving at ", options.rate, " requests/s") : "all at once")
            << ", max " << options.engine.max_batch_tokens << " tokens a step\n";
  std::cout << "   N  mode            tokens/s  decode t/s   TTFT p50 / p99 (s)   ITL p50 / p99 (ms)  KV peak / cap (MiB)"
               "   steps  prefill  sampled\n";
  for (const DecodeBenchPoint& point : report.points) {
    std::cout << format("%4.0f", static_cast<double>(point.concurrency));
    print_run("continuous", point.continuous);
    if (point.padded) {
      std::cout << "    ";
      print_run("padded static", *point.padded);
      std::cout << "          continuous / padded static: "
                << format("%.2fx", point.continuous.tokens_per_second / point.padded->tokens_per_second) << "\n";
    }
    if (point.llamacpp) {
      std::cout << "    ";
      print_run("llama.cpp", *point.llamacpp);
      if (point.llamacpp->tokens_per_second > 0.0) {
        std::cout << "          continuous / llama.cpp: "
                  << format("%.2fx", point.continuous.tokens_per_second / point.llamacpp->tokens_per_second) << "\n";
        std::cout << "          peak RSS, MiB: jagged's process " << format("%.0f", point.continuous.peak_rss_bytes / 1048576.0)
                  << " (after its continuous run), llama.cpp's " << format("%.0f", point.llamacpp->peak_rss_bytes / 1048576.0)
                  << "\n";
      }
    }
  }
  std::cout << "tokens/s: tokens the requests asked for / time from the first arrival to the last token; decode t/s: "
               "tokens of steps without prefill / their time\n";
  std::cout << "padded static: the same engine with every prompt padded to the longest and every sequence decoded "
               "until the longest output is done (EOS ignored), which costs what a padded static batch costs\n";
  if (report.step_probe) {
    const DecodeStepProbe& probe = *report.step_probe;
    std::cout << "one request's decode step (prompt " << options.probe_prompt << "): "
              << format("%.2f ms", probe.step_seconds * 1e3) << "; streaming the weights once ("
              << format("%.1f MB", probe.weight_bytes / 1e6) << " at "
              << format("%.2f GB/s", probe.bandwidth_bytes_per_second / 1e9)
              << " measured read bandwidth): " << format("%.2f ms", probe.stream_seconds * 1e3)
              << "; step / stream: " << format("%.2f", probe.ratio) << "\n";
  }
}

// The command that reproduces the report, every workload option spelled out.
std::string command_line(const DecodeBenchOptions& options, const std::string& model, const std::string& dtype,
                         int threads) {
  std::string concurrency;
  for (const int64_t level : options.concurrency) concurrency += concat(concurrency.empty() ? "" : ",", level);
  return concat("jagged bench --decode --model ", model, " --dtype ", dtype, " --threads ", threads, " --concurrency ", concurrency,
                " --min-prompt ", options.min_prompt, " --max-prompt ", options.max_prompt, " --min-new ",
                options.min_new, " --max-new ", options.max_new, " --rate ", options.rate, " --seed ", options.seed,
                " --max-batch-tokens ", options.engine.max_batch_tokens, " --kv-cache-tokens ",
                options.engine.kv_cache_tokens, " --kv-dtype ", dtype_name(options.engine.kv_dtype),
                options.padded ? "" : " --no-padded",
                options.step_probe ? "" : " --no-step-probe", options.compare_llamacpp ? " --compare-llamacpp" : "");
}

}  // namespace

void add_decode_bench_options(CLI::App& command, DecodeBenchArgs& args) {
  command.add_flag("--decode", args.enabled,
                   "the decode benchmark: concurrent requests with ragged prompts and outputs through the engine, "
                   "beside the padded static batch (options below)");
  command.add_option("--concurrency", args.options.concurrency, "decode: requests per run, e.g. 1,8,32,64")
      ->delimiter(',')
      ->capture_default_str();
  command.add_option("--rate", args.options.rate, "decode: arrivals in requests/s (Poisson; 0: all at once)")
      ->capture_default_str();
  command.add_option("--min-prompt", args.options.min_prompt, "decode: shortest prompt")->capture_default_str();
  command.add_option("--max-prompt", args.options.max_prompt, "decode: longest prompt")->capture_default_str();
  command.add_option("--min-new", args.options.min_new, "decode: fewest new tokens")->capture_default_str();
  command.add_option("--max-new", args.options.max_new, "decode: most new tokens")->capture_default_str();
  command.add_option("--prompt-len", args.prompt_len, "decode: every prompt this long (sets min and max)");
  command.add_option("--new-tokens", args.new_tokens, "decode: every output this long (sets min and max)");
  command.add_option("--max-batch-tokens", args.options.engine.max_batch_tokens, "decode: tokens per engine step")
      ->capture_default_str();
  command.add_option("--kv-cache-tokens", args.options.engine.kv_cache_tokens,
                     "decode: KV cache capacity in tokens (0: every request of a run at once)")
      ->capture_default_str();
  add_kv_dtype_option(command, args.options.engine.kv_dtype);
  command.add_flag("--no-padded", args.no_padded, "decode: skip the padded static batch");
  command.add_flag("--no-step-probe", args.no_step_probe, "decode: skip the single-request step vs bandwidth probe");
}

void bench_decode(DecodeBenchArgs args, const std::string& model_spec, const std::string& dtype, int threads,
                  uint64_t seed, const std::string& json_path, bool compare_llamacpp) {
  DecodeBenchOptions& options = args.options;
  if (args.prompt_len != 0) options.min_prompt = options.max_prompt = args.prompt_len;
  if (args.new_tokens != 0) options.min_new = options.max_new = args.new_tokens;
  options.seed = seed;
  options.padded = !args.no_padded;
  options.step_probe = !args.no_step_probe;
  options.compare_llamacpp = compare_llamacpp;
  if (std::filesystem::path(model_spec).extension() == ".gguf") options.llamacpp_gguf = model_spec;  // same file
  options.progress = [](const std::string& line) {
    if (isatty(STDERR_FILENO)) std::cerr << "\r\033[K" << line << std::flush;
  };
  refuse_overwriting(json_path, "--json", {model_spec});
  prepare_output_file(json_path, "--json");
  set_num_threads(capped_threads(threads));
  const LlamaModel model = open_llama(model_spec, dtype);
  const DecodeBenchReport report = run_decode_bench(model, options);
  options.progress("");
  print_report(report, model_spec);
  if (json_path.empty()) return;
  write_output_file(json_path,
                    decode_bench_json(report, model_spec, command_line(report.options, model_spec, dtype, report.threads)) + "\n",
                    "--json");
  std::cout << "JSON: " << json_path << "\n";
}

}  // namespace jagged::cli
