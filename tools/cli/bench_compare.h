// `jagged bench --compare-torch / --compare-onnx`: the same weights and batch in PyTorch and ONNX Runtime, run as
// child processes (the benchmark itself is library code: jagged/bench.h).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "jagged/bench.h"

namespace jagged::cli {

// Throws (before any work starts) when Debian's python3-torch cannot be imported.
void check_torch_available();
// Runs the PyTorch script on the same weights, batch and threads; returns its report plus ratios and parity.
nlohmann::json compare_with_torch(const BenchTarget& target, const NestedTensor& batch, const Tensor& nested_output,
                                  const BenchReport& report, int runs, int warmup);

// Throws (before any work starts) unless the model is an encoder and node, onnxruntime-node (in
// $JAGGED_BENCH_DEPS or build/bench-deps: scripts/setup_bench.sh) and python3-torch with python3-onnx are there.
void check_onnx_available(const std::string& model_spec);
// Exports the encoder to ONNX (bench/torch_bert.py --export-onnx) and runs bench/onnxruntime/run.mjs on the same
// batch and threads: the padded batch with its attention mask, and one sequence at a time. Returns its report plus
// ratios and the parity of the embeddings.
nlohmann::json compare_with_onnx(const BenchTarget& target, const NestedTensor& batch, const Tensor& nested_output,
                                 const BenchReport& report, int runs, int warmup);

// Throws (before any work starts) unless the model is a decoder and llama.cpp is built
// (scripts/setup_llamacpp.sh).
void check_llamacpp_available(const std::string& model_spec);
// llama.cpp's prefill of the same batch on the same weights (written as GGUF to a temporary file) and threads:
// the driver's report, and each sequence's last-position logits [num_seqs, vocab_size].
struct LlamaCppComparison {
  nlohmann::json report;
  std::vector<float> last_logits;
  double fastest_tokens_per_second = 0.0;
  bool quantized = false;  // the model's own GGUF file with block-type weights (llama.cpp ran on it)
};
LlamaCppComparison measure_llamacpp(const BenchTarget& target, const NestedTensor& batch, int threads, int runs,
                                    int warmup);
// Prints the comparison (paths, ratios, parity of the last-position logits) and returns the report for the JSON.
nlohmann::json report_llamacpp(LlamaCppComparison comparison, const NestedTensor& batch, const Tensor& nested_output,
                               const BenchReport& report);

}  // namespace jagged::cli
