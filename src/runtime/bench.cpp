// The padded-vs-nested benchmark (jagged/bench.h): the Llama target, and the measuring loop shared by every
// frontend.
#include "jagged/bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>

#include "jagged/error.h"
#include "jagged/machine.h"
#include "jagged/memory.h"
#include "jagged/model_files.h"
#include "jagged/model_spec.h"
#include "jagged/threads.h"

namespace jagged {
namespace {

// Per-layer and head FLOPs of a Llama forward over `rows` positions with `pairs` attention score pairs.
double llama_flops(const LlamaConfig& c, double rows, double pairs, double head_rows) {
  const double q_dim = double{1.0} * c.num_heads * c.head_dim;
  const double kv_dim = double{1.0} * c.num_kv_heads * c.head_dim;
  const double dim = static_cast<double>(c.model_dim), ffn = static_cast<double>(c.ffn_dim);
  const double linear = 2.0 * rows * (dim * (q_dim + 2 * kv_dim) + q_dim * dim + dim * 2 * ffn + ffn * dim);
  const double attention = 4.0 * c.head_dim * c.num_heads * pairs;
  return c.num_layers * (linear + attention) + 2.0 * head_rows * dim * static_cast<double>(c.vocab_size);
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

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t middle = values.size() / 2;
  return values.size() % 2 ? values[middle] : 0.5 * (values[middle - 1] + values[middle]);
}

std::vector<std::pair<std::string, double>> median_stages(const std::vector<StageProfile>& profiles) {
  std::vector<std::pair<std::string, double>> medians;
  for (const auto& stage : profiles.front().stages()) {
    std::vector<double> values;
    for (const auto& profile : profiles) values.push_back(profile.seconds(stage.first));
    medians.emplace_back(stage.first, median(std::move(values)));
  }
  return medians;
}

// The nested forward with the run's weights against the same weights in f32, interleaved (medians), and the
// largest logit difference relative to the largest f32 logit.
nlohmann::json compare_with_f32(const BenchOptions& options, const BenchRun& run) {
  const auto progress = [&](const std::string& text) {
    if (options.progress) options.progress(text);
  };
  progress("loading " + options.model + " in f32");
  const BenchTarget full = open_bench_target(options.model, options.tokenizer, !options.all_logits, "f32");
  std::vector<double> seconds[2];
  Tensor outputs[2];
  const int total = options.warmup + options.runs;
  for (int iteration = 0; iteration < total; ++iteration) {
    for (const int which : {iteration % 2, 1 - iteration % 2}) {
      progress(concat("versus f32: run ", iteration + 1, "/", total));
      Measured result = measure(which == 0 ? run.target : full, run.batch, BatchLayout::nested, nullptr);
      if (iteration >= options.warmup) seconds[which].push_back(result.seconds);
      outputs[which] = std::move(result.output);
    }
  }
  const double typed = median(seconds[0]);
  const double f32 = median(seconds[1]);
  const ParityStats difference =
      compare_outputs(outputs[1].data<float>(), outputs[0].data<float>(), outputs[0].numel());
  return {{"dtype_seconds", typed}, {"f32_seconds", f32}, {"speedup", f32 / typed},
          {"logits_max_abs", difference.max_abs}, {"logits_max_rel", difference.max_rel}};
}

}  // namespace

BenchTarget open_bench_target(const std::string& model_spec, const std::string& tokenizer_path, bool last_token_logits,
                              const std::string& dtype) {
  if (model_family(model_spec) == "bert") return open_encoder_target(model_spec, tokenizer_path, dtype);
  auto model = std::make_shared<LlamaModel>(open_llama_model(model_spec, dtype));
  const LlamaConfig config = model->config();
  BenchTarget target;
  target.family = "llama";
  target.vocab_size = config.vocab_size;
  target.context_length = config.context_length;
  target.tokenizer = open_model_tokenizer(model_spec, tokenizer_path, config.vocab_size);
  target.forward = [model, last_token_logits](const NestedTensor& batch, BatchLayout layout, StageProfile* profile) {
    return model->forward(batch, {layout, last_token_logits, profile});
  };
  target.flops = [config, last_token_logits](const std::vector<int64_t>& lengths, BatchLayout layout) {
    double tokens = 0, causal_pairs = 0, longest = 0;
    for (const int64_t length : lengths) {
      tokens += static_cast<double>(length);
      causal_pairs += 0.5 * static_cast<double>(length) * static_cast<double>(length + 1);
      longest = std::max(longest, static_cast<double>(length));
    }
    const double seqs = static_cast<double>(lengths.size());
    const double head_rows = last_token_logits ? seqs : tokens;  // the padded twin also drops padding before the head
    if (layout == BatchLayout::nested) return llama_flops(config, tokens, causal_pairs, head_rows);
    return llama_flops(config, seqs * longest, seqs * longest * longest, last_token_logits ? seqs : seqs * longest);
  };
  target.export_for_torch = [model](const std::filesystem::path& directory) { export_huggingface(*model, directory); };
  // llama.cpp needs a vocabulary in the file; the comparison feeds it token ids, so a model whose tokenizer is not
  // SentencePiece gets a synthetic one.
  target.export_gguf = [model, tokenizer = target.tokenizer, model_spec](const std::filesystem::path& path) {
    if (std::filesystem::path(model_spec).extension() == ".gguf") {
      // llama.cpp runs on the very file jagged loaded, with its (quantized) types.
      std::filesystem::create_symlink(std::filesystem::absolute(model_spec), path);
      return;
    }
    const bool sentencepiece = tokenizer && tokenizer->kind() == "sentencepiece";
    export_gguf(*model, sentencepiece ? tokenizer.get() : nullptr, path);
  };
  const std::vector<ops::WeightType> types = model->projection_types();
  target.quantized_projections = std::any_of(types.begin(), types.end(), [](ops::WeightType type) {
    return type != ops::WeightType::f32 && type != ops::WeightType::bf16;
  });
  target.projection_types = ops::describe_weight_types(types);
  target.torch_script = "bench/torch_llama.py";
  target.torch_args = last_token_logits ? "" : " --all-logits";
  return target;
}

void validate_bench_options(const BenchOptions& options) {
  validate_distribution_name(options.workload.distribution);
  if (options.workload.batch <= 0) {
    throw InvalidArgument(concat("--batch must be positive, got ", options.workload.batch));
  }
  if (options.workload.min_len < 1 || options.workload.min_len > options.workload.max_len) {
    throw InvalidArgument(concat("need 1 <= --min-len <= --max-len, got ", options.workload.min_len, " and ",
                                 options.workload.max_len));
  }
  if (options.runs < 1) throw InvalidArgument(concat("--runs must be >= 1, got ", options.runs));
  if (options.warmup < 0) throw InvalidArgument(concat("--warmup must be >= 0, got ", options.warmup));
  ops::parse_weight_type(options.dtype);  // a clear error before loading
}

BenchRun run_bench(const BenchOptions& options) {
  validate_bench_options(options);
  const auto progress = [&](const std::string& text) {
    if (options.progress) options.progress(text);
  };
  set_num_threads(options.threads);
  progress("loading " + options.model);
  BenchRun run;
  run.target = open_bench_target(options.model, options.tokenizer, !options.all_logits, options.dtype);
  const BenchTarget& target = run.target;
  WorkloadSpec workload = options.workload;
  workload.context_length = target.context_length;  // refused before a huge batch is allocated
  run.batch = draw_workload(workload, target.vocab_size, target.tokenizer.get());
  const NestedTensor& batch = run.batch;
  if (batch.max_seqlen() > target.context_length) {
    throw InvalidArgument(concat("the batch's longest sequence (", batch.max_seqlen(),
                                 " tokens) exceeds the model's context length ", target.context_length));
  }
  BenchReport& report = run.report;
  report.model = options.model;
  report.distribution = options.workload.distribution;
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
  Tensor padded_output;
  const int total = options.warmup + options.runs;
  for (int iteration = 0; iteration < total; ++iteration) {
    const bool measured_run = iteration >= options.warmup;
    // Alternate which layout goes first, so drift and caches favour neither.
    const std::vector<BatchLayout> order = iteration % 2 ? std::vector{BatchLayout::nested, BatchLayout::padded}
                                                         : std::vector{BatchLayout::padded, BatchLayout::nested};
    for (const BatchLayout layout : order) {
      const bool nested = layout == BatchLayout::nested;
      progress(concat(measured_run ? "run " : "warm-up ", measured_run ? iteration - options.warmup + 1 : iteration + 1,
                      "/", measured_run ? options.runs : options.warmup, ": ", nested ? "nested" : "padded"));
      StageProfile profile;
      Measured result = measure(target, batch, layout, &profile);
      if (!measured_run) continue;
      PathResult& path = nested ? report.nested : report.padded;
      path.run_seconds.push_back(result.seconds);
      path.peak_activation_bytes = std::max(path.peak_activation_bytes, result.peak_bytes);
      profiles[layout].push_back(std::move(profile));
      (nested ? run.nested_output : padded_output) = std::move(result.output);
    }
  }
  progress("");
  report.padded.stages = median_stages(profiles[BatchLayout::padded]);
  report.nested.stages = median_stages(profiles[BatchLayout::nested]);
  report.parity =
      compare_outputs(padded_output.data<float>(), run.nested_output.data<float>(), run.nested_output.numel());
  progress("measuring the fp32 FMA peak");
  report.fp32_peak_gflops = measure_fp32_peak_gflops(report.threads);
  report.process_peak_rss_bytes = process_peak_rss_bytes();
  const std::string linear_path = ops::linear_path(ops::parse_weight_type(options.dtype));
  report.extra["weights"] = {{"dtype", options.dtype}, {"linear_path", linear_path}};
  if (!run.target.projection_types.empty()) report.extra["weights"]["projection_types"] = run.target.projection_types;
  if (options.compare_f32 && options.dtype != "f32") report.extra["versus_f32"] = compare_with_f32(options, run);
  progress("");
  return run;
}

}  // namespace jagged
