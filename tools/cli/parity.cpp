// jagged parity: one random ragged batch run nested, padded, and each sequence alone; the logits over real
// tokens must agree. Exit 1 when the largest relative difference exceeds --tol.
#include <cmath>
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "common.h"
#include "jagged/workload.h"

namespace jagged::cli {
namespace {

struct ParityArgs {
  std::string model;
  std::string distribution = "uniform";
  int64_t batch = 32;
  int64_t min_len = 10;
  int64_t max_len = 256;
  uint64_t seed = 555;
  double tolerance = 1e-4;
  bool tolerance_given = false;  // else by the weights' activation rounding (1e-4 when activations stay f32)
  std::string dtype = "f32";
  bool length_options_given = false;  // --batch, --min-len or --max-len on the command line
};

struct Difference {
  double max_abs = 0.0;
  double max_rel = 0.0;  // max |a - b| / max |b|: relative to the logits' scale, stable near zero
};

Difference compare(const Tensor& actual, const Tensor& expected) {
  Difference diff;
  double scale = 0.0;
  const float* a = actual.data<float>();
  const float* b = expected.data<float>();
  for (int64_t i = 0; i < expected.numel(); ++i) {
    const double delta = std::fabs(static_cast<double>(a[i]) - b[i]);
    diff.max_abs = std::isnan(delta) ? INFINITY : std::max(diff.max_abs, delta);
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  diff.max_rel = diff.max_abs / std::max(scale, 1e-30);
  return diff;
}

void parity(const ParityArgs& args, int& exit_code) {
  if (args.tolerance_given && !(args.tolerance > 0.0)) {
    throw InvalidArgument(concat("--tol must be positive, got ", args.tolerance));
  }
  validate_distribution_name(args.distribution);
  check_length_options(args.distribution, args.length_options_given);
  const LlamaModel model = open_llama(args.model, args.dtype);
  if (args.max_len > model.config().context_length) {
    throw InvalidArgument(concat("--max-len ", args.max_len, " exceeds the model's context length ",
                                 model.config().context_length));
  }
  const NestedTensor batch =
      draw_workload({args.distribution, args.batch, args.min_len, args.max_len, args.seed, model.config().context_length},
                    model.config().vocab_size);
  const Tensor nested = model.forward(batch, {BatchLayout::nested, false, nullptr});
  const Tensor padded = model.forward(batch, {BatchLayout::padded, false, nullptr});
  // Each sequence alone, stacked in packed order.
  Tensor alone(nested.shape());
  const int64_t vocab = model.config().vocab_size;
  for (int64_t seq = 0; seq < batch.num_seqs(); ++seq) {
    if (batch.seqlen(seq) == 0) continue;
    const SequenceView view = batch.sequence(seq);
    const Tensor ids = Tensor::from_ints({view.as<int32_t>(), static_cast<size_t>(batch.seqlen(seq))}, {batch.seqlen(seq)});
    const Tensor logits = model.forward(NestedTensor(ids.clone(), {0, static_cast<int32_t>(batch.seqlen(seq))}));
    std::copy_n(logits.data<float>(), logits.numel(), alone.data<float>() + batch.cu_seqlens()[seq] * vocab);
  }
  const Difference padded_diff = compare(padded, nested);
  const Difference alone_diff = compare(alone, nested);
  std::printf("parity: %s, --dist %s: %lld sequences, %lld real tokens (padded: %lld), seed %llu\n",
              args.model.c_str(), args.distribution.c_str(), static_cast<long long>(batch.num_seqs()),
              static_cast<long long>(batch.num_tokens()), static_cast<long long>(batch.num_seqs() * batch.max_seqlen()),
              static_cast<unsigned long long>(args.seed));
  std::printf("  padded vs nested: max abs %.3e  max rel %.3e\n", padded_diff.max_abs, padded_diff.max_rel);
  std::printf("  alone  vs nested: max abs %.3e  max rel %.3e\n", alone_diff.max_abs, alone_diff.max_rel);
  std::printf("  weights %s, linear path: %s\n", args.dtype.c_str(), ops::linear_path(model.weight_type()).c_str());
  if (model.weight_type() != ops::WeightType::f32) {
    // The price of the storage type: the same weights kept in f32 (informational; the exit code is parity's).
    const Tensor full = open_llama(args.model, "f32").forward(batch, {BatchLayout::nested, false, nullptr});
    const Difference type_diff = compare(nested, full);
    std::printf("  %s vs f32 weights: max abs %.3e  max rel %.3e\n", args.dtype.c_str(), type_diff.max_abs,
                type_diff.max_rel);
  }
  // Alone vs nested is the batch-invariance rule: bit for bit whatever the weights. Padded runs another attention
  // kernel, whose last-bit differences a path that rounds activations (bf16, int8 blocks) turns into whole
  // rounding steps: its default tolerance is 20 such roundings.
  double rounding = 0.0;
  for (const ops::WeightType type : model.projection_types()) rounding = std::max(rounding, ops::linear_activation_rounding(type));
  const double tolerance = args.tolerance_given ? args.tolerance : rounding > 0.0 ? 20.0 * rounding : 1e-4;
  const bool alone_identical = alone_diff.max_abs == 0.0;
  const bool pass = padded_diff.max_rel <= tolerance && alone_identical;
  std::printf("  %s (padded: tolerance %.1e relative to the largest logit; alone: bit-identical%s)\n",
              pass ? "PASS" : "FAIL", tolerance, alone_identical ? "" : " FAILED");
  exit_code = pass ? 0 : 1;
}

}  // namespace

void add_parity_command(CLI::App& app) {
  auto args = std::make_shared<ParityArgs>();
  CLI::App* command = app.add_subcommand("parity", "compare nested, padded and one-by-one logits on a random batch");
  command->add_option("--model,-m", args->model, "model file/dir or synthetic:NAME")->required();
  command->add_option("--dist", args->distribution, "lengths: uniform, study, lognormal, equal, one-long, lengths:FILE")
      ->capture_default_str();
  const std::vector<CLI::Option*> length_options{
      command->add_option("--batch", args->batch, "sequences")->capture_default_str(),
      command->add_option("--min-len", args->min_len, "shortest sequence")->capture_default_str(),
      command->add_option("--max-len", args->max_len, "longest sequence")->capture_default_str()};
  command->add_option("--seed", args->seed, "seed of lengths and token ids")->capture_default_str();
  CLI::Option* tolerance = command->add_option(
      "--tol", args->tolerance,
      "max relative difference, padded vs nested (default: 1e-4 when activations stay f32, else 20 times the "
      "path's activation rounding)");
  add_dtype_option(*command, args->dtype, "; other than f32: also the difference from f32 weights");
  command->callback([args, length_options, tolerance] {
    for (const CLI::Option* option : length_options) args->length_options_given |= option->count() > 0;
    args->tolerance_given = tolerance->count() > 0;
    parity(*args, command_exit_code());
  });
}

}  // namespace jagged::cli
