// A model as `jagged bench` sees it: a forward in either layout, the FLOPs of each layout from the shapes,
// and an export for running the same weights in PyTorch (and, for encoders, ONNX Runtime).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "jagged/llama.h"
#include "jagged/tokenizer.h"

namespace jagged::cli {

struct BenchReport;

struct BenchTarget {
  std::string family;  // "llama" (decoder) or "bert" (encoder)
  int64_t vocab_size = 0;
  int64_t context_length = 0;
  std::shared_ptr<Tokenizer> tokenizer;  // may be null (synthetic models)
  // The output compared between layouts: logits (decoder) or mean-pooled embeddings [num_seqs, model_dim]
  // (encoder).
  std::function<Tensor(const NestedTensor&, BatchLayout, StageProfile*)> forward;
  // FLOPs a layout performs on a batch of these lengths (nested: real tokens and real attention pairs only).
  std::function<double(const std::vector<int64_t>&, BatchLayout)> flops;
  // Writes the weights where the PyTorch script reads them (a Hugging Face directory).
  std::function<void(const std::filesystem::path&)> export_for_torch;
  std::string torch_script;  // bench/torch_llama.py or bench/torch_bert.py
  std::string torch_args;    // extra arguments that make the script produce the same outputs
  // Encoders: last hidden states of the nested forward [num_tokens, model_dim], compared with PyTorch's as well
  // as the embeddings (a pooled mean can hide an error in single tokens). Empty for decoders.
  std::function<Tensor(const NestedTensor&)> hidden_states;
  // Decoders: writes the model as one GGUF file for llama.cpp (export_gguf). Empty for encoders.
  std::function<void(const std::filesystem::path&)> export_gguf;
};

// "llama" or "bert": synthetic:NAME by the synthetic list that has NAME, a file or directory by its architecture.
// InvalidArgument for an unknown synthetic name, FileError for a file that cannot be read.
std::string bench_family(const std::string& model_spec);

BenchTarget open_bench_target(const std::string& model_spec, const std::string& tokenizer_path, bool last_token_logits);
// The BERT-family encoder target (bench_encoder.cpp).
BenchTarget open_encoder_target(const std::string& model_spec, const std::string& tokenizer_path);

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
};
LlamaCppComparison measure_llamacpp(const BenchTarget& target, const NestedTensor& batch, int threads, int runs,
                                    int warmup);
// Prints the comparison (paths, ratios, parity of the last-position logits) and returns the report for the JSON.
nlohmann::json report_llamacpp(LlamaCppComparison comparison, const NestedTensor& batch, const Tensor& nested_output,
                               const BenchReport& report);

}  // namespace jagged::cli
