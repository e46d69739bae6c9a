// jagged bench: the study's experiment as one command. The same model and batch run padded and nested,
// interleaved so machine noise hits both; per-stage medians, peak activation memory, parity of the outputs,
// the ideal ratios computed from the shapes; a table, JSON and an SVG picture.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include "bench_compare.h"
#include "bench_decode.h"
#include "commands.h"
#include "common.h"
#include "jagged/bench.h"

namespace jagged::cli {
namespace {

struct BenchArgs {
  BenchOptions bench;  // what run_bench measures
  std::string json_path;
  std::string plot_path;
  bool compare_torch = false;
  bool compare_onnx = false;
  bool compare_llamacpp = false;
  DecodeBenchArgs decode;  // --decode and its options
  bool length_options_given = false;  // --batch, --min-len or --max-len on the command line
};

void validate(const BenchArgs& args) {
  validate_bench_options(args.bench);
  check_length_options(args.bench.workload.distribution, args.length_options_given);
  const std::string& dist = args.bench.workload.distribution;
  const std::string data_file = dist.rfind("lengths:", 0) == 0 ? dist.substr(8)
                                : dist.rfind("corpus:", 0) == 0 ? dist.substr(7) : std::string();
  refuse_overwriting(args.json_path, "--json", {args.bench.model, args.bench.tokenizer, data_file, args.plot_path});
  refuse_overwriting(args.plot_path, "--plot", {args.bench.model, args.bench.tokenizer, data_file});
  prepare_output_file(args.json_path, "--json");
  prepare_output_file(args.plot_path, "--plot");
  if (args.compare_torch) check_torch_available();
  if (args.compare_onnx) check_onnx_available(args.bench.model);
  if (args.compare_llamacpp) check_llamacpp_available(args.bench.model);
}

void progress(const std::string& text) {
  if (isatty(STDERR_FILENO)) std::cerr << "\r\033[K" << text << std::flush;
}

void bench(const BenchArgs& args) {
  validate(args);
  BenchOptions options = args.bench;
  options.progress = progress;
  options.threads = capped_threads(options.threads);
  BenchRun run = run_bench(options);
  BenchReport& report = run.report;
  // llama.cpp is measured before the report prints, so that the report's target reads its live figure.
  std::optional<LlamaCppComparison> llamacpp;
  if (args.compare_llamacpp) {
    progress("running llama.cpp on the same batch");
    llamacpp = measure_llamacpp(run.target, run.batch, report.threads, options.runs, options.warmup);
    report.llamacpp_tokens_per_second = llamacpp->fastest_tokens_per_second;
    progress("");
  }
  print_report(report);
  const nlohmann::json& weights = report.extra["weights"];
  std::printf("weights %s, linear path: %s\n", weights["dtype"].get<std::string>().c_str(),
              weights["linear_path"].get<std::string>().c_str());
  if (weights.contains("projection_types")) {
    std::printf("projections stored as: %s\n", weights["projection_types"].get<std::string>().c_str());
  }
  if (report.extra.contains("versus_f32")) {
    const nlohmann::json& versus = report.extra["versus_f32"];
    std::printf("nested, %s vs f32 weights (interleaved, medians of %d): %.4f s vs %.4f s = %.2fx; logits max rel "
                "difference %.2e\n",
                options.dtype.c_str(), options.runs, versus["dtype_seconds"].get<double>(),
                versus["f32_seconds"].get<double>(), versus["speedup"].get<double>(),
                versus["logits_max_rel"].get<double>());
  }
  if (args.compare_torch) {
    report.extra["torch"] =
        compare_with_torch(run.target, run.batch, run.nested_output, report, options.runs, options.warmup);
  }
  if (args.compare_onnx) {
    report.extra["onnxruntime"] =
        compare_with_onnx(run.target, run.batch, run.nested_output, report, options.runs, options.warmup);
  }
  if (llamacpp) report.extra["llama.cpp"] = report_llamacpp(std::move(*llamacpp), run.batch, run.nested_output, report);
  if (!args.json_path.empty()) {
    write_output_file(args.json_path, dump_json(report_json(report), 2) + "\n", "--json");
    std::cout << "JSON: " << args.json_path << "\n";
  }
  if (!args.plot_path.empty()) {
    write_output_file(args.plot_path, report_svg(report), "--plot");
    std::cout << "plot: " << args.plot_path << "\n";
  }
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* command = app.add_subcommand("bench", "padded vs nested: time per stage, peak memory, parity, plots");
  command->add_option("--model,-m", args->bench.model, "model file/dir or synthetic:NAME")->required();
  command->add_option("--tokenizer", args->bench.tokenizer, "tokenizer (for --dist corpus:FILE)");
  command->add_option("--dist", args->bench.workload.distribution,
                      "study | uniform | lognormal | equal | one-long | corpus:FILE | lengths:FILE")
      ->capture_default_str();
  const std::vector<CLI::Option*> length_options{
      command->add_option("--batch", args->bench.workload.batch, "sequences")->capture_default_str(),
      command->add_option("--min-len", args->bench.workload.min_len, "shortest sequence")->capture_default_str(),
      command->add_option("--max-len", args->bench.workload.max_len, "longest sequence")->capture_default_str()};
  command->add_option("--seed", args->bench.workload.seed, "seed of lengths and token ids")->capture_default_str();
  command->add_option("--runs", args->bench.runs, "measured runs per layout")->capture_default_str();
  command->add_option("--warmup", args->bench.warmup, "unmeasured runs first")->capture_default_str();
  command->add_option("--threads", args->bench.threads, "threads (0: all cores; capped at the cores)")->capture_default_str();
  command->add_flag("--all-logits", args->bench.all_logits,
                    "LM head on every token (default: last token of each sequence)");
  command->add_option("--json", args->json_path, "write the full report as JSON (missing folders are created)");
  command->add_option("--plot", args->plot_path, "write an SVG picture of the report (missing folders are created)");
  command->add_flag("--compare-torch", args->compare_torch, "also run PyTorch (Debian's python3-torch) on the same batch");
  command->add_flag("--compare-onnx", args->compare_onnx,
                    "encoders: also run ONNX Runtime (onnxruntime-node, scripts/setup_bench.sh) on the same batch");
  command->add_flag("--compare-llamacpp", args->compare_llamacpp,
                    "decoders: also run llama.cpp (scripts/setup_llamacpp.sh builds it) on the same batch or decode "
                    "workload, the model written as GGUF (a .gguf model: that file, with its quantized types)");
  add_decode_bench_options(*command, args->decode);
  add_dtype_option(*command, args->bench.dtype, "; with --decode too");
  command->add_flag("--compare-f32", args->bench.compare_f32,
                    "with --dtype bf16/q8_0: also time the same weights in f32 (nested)");
  command->callback([args, length_options] {
    for (const CLI::Option* option : length_options) args->length_options_given |= option->count() > 0;
    if (!args->decode.enabled) return bench(*args);
    if (args->compare_llamacpp) check_llamacpp_available(args->bench.model);
    bench_decode(args->decode, args->bench.model, args->bench.dtype, args->bench.threads, args->bench.workload.seed, args->json_path,
                 args->compare_llamacpp);
  });
}

}  // namespace jagged::cli
