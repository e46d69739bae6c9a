// The study's experiment as library code: one model and batch run padded and nested, interleaved so machine
// noise hits both; per-stage medians, peak activation memory, parity of the outputs and the ideal ratios from the
// shapes, in a BenchReport (jagged/bench_report.h). `jagged bench` and Python's jagged.bench both call run_bench.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "jagged/bench_report.h"
#include "jagged/llama.h"
#include "jagged/tokenizer.h"
#include "jagged/workload.h"

namespace jagged {

// A model as a benchmark sees it: a forward in either layout, the FLOPs of each layout from the shapes, and an
// export for running the same weights in PyTorch (and, for encoders, ONNX Runtime).
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
  // Decoders: writes the model as one GGUF file for llama.cpp (export_gguf), or, for a model loaded from a GGUF
  // file, links that file (so llama.cpp runs the same quantized types). Empty for encoders.
  std::function<void(const std::filesystem::path&)> export_gguf;
  // Decoders: how the projections are stored and the kernel path of each type, e.g. "q5_0 x13 (...), f32 x8
  // (f32-fma (own GEMM)), q8_0 x1 (avx512-vnni)" (a GGUF file keeps its types),
  // and whether any is of a GGUF block type (what llama.cpp then runs is that file, with the same blocks).
  std::string projection_types;
  bool quantized_projections = false;
};

// A decoder (logits of each sequence's last token, or of every token) or an encoder (mean-pooled embeddings), by
// model_family (jagged/model_spec.h). InvalidArgument / FileError as the model and tokenizer loaders throw.
// dtype: the weights' storage type ("f32", "bf16", "q8_0").
BenchTarget open_bench_target(const std::string& model_spec, const std::string& tokenizer_path, bool last_token_logits,
                              const std::string& dtype = "f32");
// The BERT-family encoder target (bench_encoder.cpp).
BenchTarget open_encoder_target(const std::string& model_spec, const std::string& tokenizer_path,
                                const std::string& dtype = "f32");

struct BenchOptions {
  std::string model;          // a model file/directory or synthetic:NAME
  std::string tokenizer;      // for --dist corpus:FILE (default: the model's own)
  WorkloadSpec workload;
  int runs = 5;               // measured runs per layout
  int warmup = 1;             // unmeasured runs first
  int threads = 0;            // 0: all cores
  bool all_logits = false;    // decoders: the LM head on every token (default: each sequence's last token)
  std::string dtype = "f32";  // the weights' storage type in memory
  bool compare_f32 = false;   // with another dtype: also time the same weights in f32 (report.extra["versus_f32"])
  std::function<void(const std::string&)> progress;  // called with what runs now ("" when done); may be empty
};

// Throws InvalidArgument naming the option unless the options can run (checked before any work starts).
void validate_bench_options(const BenchOptions& options);

struct BenchRun {
  BenchTarget target;
  NestedTensor batch;    // the measured batch
  Tensor nested_output;  // the nested path's output of the last measured run
  BenchReport report;
};

// Validates, loads the model, draws the batch and measures both layouts; sets the thread count (options.threads).
BenchRun run_bench(const BenchOptions& options);

}  // namespace jagged
