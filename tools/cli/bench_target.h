// A model as `jagged bench` sees it: a forward in either layout, the FLOPs of each layout from the shapes,
// and an export for running the same weights in PyTorch.
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
  // The output compared between layouts: logits (decoder) or embeddings (encoder).
  std::function<Tensor(const NestedTensor&, BatchLayout, StageProfile*)> forward;
  // FLOPs a layout performs on a batch of these lengths (nested: real tokens and causal pairs only).
  std::function<double(const std::vector<int64_t>&, BatchLayout)> flops;
  // Writes the weights where the PyTorch script reads them (a Hugging Face directory).
  std::function<void(const std::filesystem::path&)> export_for_torch;
  std::string torch_script;  // bench/torch_llama.py or bench/torch_bert.py
  std::string torch_args;    // extra arguments that make the script produce the same outputs
};

BenchTarget open_bench_target(const std::string& model_spec, const std::string& tokenizer_path, bool last_token_logits);

// Throws (before any work starts) when Debian's python3-torch cannot be imported.
void check_torch_available();
// Runs the PyTorch script on the same weights, batch and threads; returns its report plus ratios and parity.
nlohmann::json compare_with_torch(const BenchTarget& target, const NestedTensor& batch, const Tensor& nested_output,
                                  const BenchReport& report, int runs, int warmup);

}  // namespace jagged::cli
