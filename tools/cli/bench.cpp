// jagged bench: the study's experiment as one command. The same model and batch run padded and nested,
// interleaved so machine noise hits both; per-stage medians, peak activation memory, parity of the outputs,
// the ideal ratios computed from the shapes; a table, JSON and an SVG picture.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>

#include "bench_report.h"
#include "bench_target.h"
#include "commands.h"
#include "common.h"
#include "jagged/machine.h"
#include "jagged/memory.h"
#include "jagged/threads.h"
#include "jagged/workload.h"

namespace jagged::cli {
namespace {

struct BenchArgs {
  std::string model;
  std::string tokenizer;
  WorkloadSpec workload;
  int runs = 5;
  int warmup = 1;
  int threads = 0;
  bool all_logits = false;
  std::string json_path;
  std::string plot_path;
  bool compare_torch = false;
  bool compare_onnx = false;
  bool compare_llamacpp = false;
};

void check_writable(const std::string& path, const char* flag) {
  if (path.empty()) return;
  const std::filesystem::path parent = std::filesystem::absolute(path).parent_path();
  if (!std::filesystem::is_directory(parent) || access(parent.c_str(), W_OK) != 0) {
    throw InvalidArgument(concat(flag, " ", path, ": the folder ", parent.string(), " does not exist or is not writable"));
  }
}

void validate(const BenchArgs& args) {
  validate_distribution_name(args.workload.distribution);
  if (args.workload.batch <= 0) throw InvalidArgument(concat("--batch must be positive, got ", args.workload.batch));
  if (args.workload.min_len < 1 || args.workload.min_len > args.workload.max_len) {
    throw InvalidArgument(concat("need 1 <= --min-len <= --max-len, got ", args.workload.min_len, " and ",
                                 args.workload.max_len));
  }
  if (args.runs < 1) throw InvalidArgument(concat("--runs must be >= 1, got ", args.runs));
  if (args.warmup < 0) throw InvalidArgument(concat("--warmup must be >= 0, got ", args.warmup));
  check_writable(args.json_path, "--json");
  check_writable(args.plot_path, "--plot");
  if (args.compare_torch) check_torch_available();
  if (args.compare_onnx) check_onnx_available(args.model);
  if (args.compare_llamacpp) check_llamacpp_available(args.model);
}

int64_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

void progress(const std::string& text) {
  if (isatty(STDERR_FILENO)) std::cerr << "\r\033[K" << text << std::flush;
}

struct Measured {
  Tensor output;
  double seconds = 0.0;
  int64_t peak_bytes = 0;
};

Measured measure(const BenchTarget& target, const NestedTensor& batch, BatchLayout layout, StageProfile* profile) {
  const int64_t before = memory_stats().current_bytes;
  reset_peak_memory();
  const auto start = std::chrono::steady_clock::now();
  Measured measured;
  measured.output = target.forward(batch, layout, profile);
  measured.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  measured.peak_bytes = memory_stats().peak_bytes - before;
  return measured;
}

std::vector<std::pair<std::string, double>> median_stages(const std::vector<StageProfile>& profiles) {
  std::vector<std::pair<std::string, double>> medians;
  for (const auto& stage : profiles.front().stages()) {
    std::vector<double> values;
    for (const auto& profile : profiles) values.push_back(profile.seconds(stage.first));
    std::sort(values.begin(), values.end());
    medians.emplace_back(stage.first, values.size() % 2 ? values[values.size() / 2]
                                                        : 0.5 * (values[values.size() / 2 - 1] + values[values.size() / 2]));
  }
  return medians;
}

void bench(const BenchArgs& args) {
  validate(args);
  set_num_threads(args.threads);
  progress("loading " + args.model);
  const BenchTarget target = open_bench_target(args.model, args.tokenizer, !args.all_logits);
  const NestedTensor batch = draw_workload(args.workload, target.vocab_size, target.tokenizer.get());
  if (batch.max_seqlen() > target.context_length) {
    throw InvalidArgument(concat("the batch's longest sequence (", batch.max_seqlen(),
                                 " tokens) exceeds the model's context length ", target.context_length));
  }
  BenchReport report;
  report.model = args.model;
  report.distribution = args.workload.distribution;
  report.lengths = batch.seqlens();
  report.real_tokens = batch.num_tokens();
  report.padded_tokens = batch.num_seqs() * batch.max_seqlen();
  report.threads = num_threads();
  report.real_flops = target.flops(report.lengths, BatchLayout::nested);
  report.padded.name = "padded";
  report.nested.name = "nested";
  report.padded.flops = target.flops(report.lengths, BatchLayout::padded);
  report.nested.flops = report.real_flops;
  report.ideal_time_ratio = report.padded.flops / report.real_flops;
  report.ideal_memory_ratio = static_cast<double>(report.padded_tokens) / static_cast<double>(report.real_tokens);

  std::map<BatchLayout, std::vector<StageProfile>> profiles;
  Tensor nested_output, padded_output;
  const int total = args.warmup + args.runs;
  for (int run = 0; run < total; ++run) {
    const bool measured_run = run >= args.warmup;
    // Alternate which layout goes first, so drift and caches favour neither.
    const std::vector<BatchLayout> order = run % 2 ? std::vector{BatchLayout::nested, BatchLayout::padded}
                                                   : std::vector{BatchLayout::padded, BatchLayout::nested};
    for (const BatchLayout layout : order) {
      const bool nested = layout == BatchLayout::nested;
      progress(concat(measured_run ? "run " : "warm-up ", measured_run ? run - args.warmup + 1 : run + 1, "/",
                      measured_run ? args.runs : args.warmup, ": ", nested ? "nested" : "padded"));
      StageProfile profile;
      Measured result = measure(target, batch, layout, &profile);
      if (!measured_run) continue;
      PathResult& path = nested ? report.nested : report.padded;
      path.run_seconds.push_back(result.seconds);
      path.peak_activation_bytes = std::max(path.peak_activation_bytes, result.peak_bytes);
      profiles[layout].push_back(std::move(profile));
      (nested ? nested_output : padded_output) = std::move(result.output);
    }
  }
  progress("");
  report.padded.stages = median_stages(profiles[BatchLayout::padded]);
  report.nested.stages = median_stages(profiles[BatchLayout::nested]);
  report.parity = compare_outputs(padded_output.data<float>(), nested_output.data<float>(), nested_output.numel());
  // llama.cpp is measured before the report prints, so that the report's target reads its live figure.
  std::optional<LlamaCppComparison> llamacpp;
  if (args.compare_llamacpp) {
    progress("running llama.cpp on the same batch");
    llamacpp = measure_llamacpp(target, batch, report.threads, args.runs, args.warmup);
    report.llamacpp_tokens_per_second = llamacpp->fastest_tokens_per_second;
  }
  progress("measuring the fp32 FMA peak");
  report.fp32_peak_gflops = measure_fp32_peak_gflops(report.threads);
  report.process_peak_rss_bytes = peak_rss_bytes();
  progress("");
  print_report(report);
  if (args.compare_torch) {
    report.extra["torch"] = compare_with_torch(target, batch, nested_output, report, args.runs, args.warmup);
  }
  if (args.compare_onnx) {
    report.extra["onnxruntime"] = compare_with_onnx(target, batch, nested_output, report, args.runs, args.warmup);
  }
  if (llamacpp) report.extra["llama.cpp"] = report_llamacpp(std::move(*llamacpp), batch, nested_output, report);
  if (!args.json_path.empty()) {
    std::ofstream out(args.json_path);
    out << report_json(report).dump(2) << "\n";
    if (!out) throw FileError(concat(args.json_path, ": could not write the JSON report"));
    std::cout << "JSON: " << args.json_path << "\n";
  }
  if (!args.plot_path.empty()) {
    std::ofstream out(args.plot_path);
    out << report_svg(report);
    if (!out) throw FileError(concat(args.plot_path, ": could not write the plot"));
    std::cout << "plot: " << args.plot_path << "\n";
  }
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* command = app.add_subcommand("bench", "padded vs nested: time per stage, peak memory, parity, plots");
  command->add_option("--model,-m", args->model, "model file/dir or synthetic:NAME")->required();
  command->add_option("--tokenizer", args->tokenizer, "tokenizer (for --dist corpus:FILE)");
  command->add_option("--dist", args->workload.distribution,
                      "study | uniform | lognormal | equal | one-long | corpus:FILE | lengths:FILE")
      ->capture_default_str();
  command->add_option("--batch", args->workload.batch, "sequences")->capture_default_str();
  command->add_option("--min-len", args->workload.min_len, "shortest sequence")->capture_default_str();
  command->add_option("--max-len", args->workload.max_len, "longest sequence")->capture_default_str();
  command->add_option("--seed", args->workload.seed, "seed of lengths and token ids")->capture_default_str();
  command->add_option("--runs", args->runs, "measured runs per layout")->capture_default_str();
  command->add_option("--warmup", args->warmup, "unmeasured runs first")->capture_default_str();
  command->add_option("--threads", args->threads, "threads (0: all cores)")->capture_default_str();
  command->add_flag("--all-logits", args->all_logits, "LM head on every token (default: last token of each sequence)");
  command->add_option("--json", args->json_path, "write the full report as JSON");
  command->add_option("--plot", args->plot_path, "write an SVG picture of the report");
  command->add_flag("--compare-torch", args->compare_torch, "also run PyTorch (Debian's python3-torch) on the same batch");
  command->add_flag("--compare-onnx", args->compare_onnx,
                    "encoders: also run ONNX Runtime (onnxruntime-node, scripts/setup_bench.sh) on the same batch");
  command->add_flag("--compare-llamacpp", args->compare_llamacpp,
                    "decoders: also run llama.cpp (scripts/setup_llamacpp.sh builds it) on the same batch, the model "
                    "written as GGUF");
  command->callback([args] { bench(*args); });
}

}  // namespace jagged::cli
