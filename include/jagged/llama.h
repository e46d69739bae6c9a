// Llama-family decoder (Llama 2/3, TinyLlama, SmolLM, Qwen2, llama2.c) on nested batches, and its padded twin.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "jagged/forward.h"
#include "jagged/model_config.h"
#include "jagged/nested_tensor.h"
#include "jagged/ops.h"
#include "jagged/profile.h"

namespace jagged {

class LlamaModel {
 public:
  // Validates that every tensor the config needs is present with the right shape (InvalidArgument naming it).
  // weight_type: how the projections are stored (f32, or bf16 rounded from the loaded f32).
  LlamaModel(LlamaConfig config, WeightMap weights, ops::WeightType weight_type = ops::WeightType::f32);
  // A model of a named real shape with seeded random weights (for benchmarks without files):
  // smollm-135m, stories15m, tinyllama-1.1b, llama-3.2-1b, qwen2-0.5b, tiny.
  static LlamaModel synthetic(const std::string& name, uint64_t seed = 1234, ops::WeightType weight_type = ops::WeightType::f32);
  static std::vector<std::string> synthetic_names();

  LlamaModel(LlamaModel&&) noexcept = default;
  LlamaModel& operator=(LlamaModel&&) noexcept = default;

  const LlamaConfig& config() const { return config_; }
  int64_t parameter_count() const;
  ops::WeightType weight_type() const { return weight_type_; }

  // token_ids: nested [num_tokens] i32, each id in [0, vocab_size), each sequence at most context_length long.
  // Returns logits [num_tokens, vocab_size] f32 (real tokens only, in packed order), or with last_token_logits
  // [num_seqs, vocab_size] (every sequence then needs at least one token). Both layouts return the same form.
  Tensor forward(const NestedTensor& token_ids, const ForwardOptions& options = {}) const;

  // A copy of the weights under their canonical names (model_config.h), for exporting to other engines.
  WeightMap canonical_weights() const;

 private:
  struct Layer {
    // Projections packed for ops::linear (the model's only copy of them).
    ops::PackedWeight wqkv;       // [(num_heads + 2 * num_kv_heads) * head_dim, model_dim]
    Tensor bqkv;                  // [(num_heads + 2 * num_kv_heads) * head_dim] or undefined
    ops::PackedWeight wo;         // [model_dim, num_heads * head_dim]
    ops::PackedWeight w_gate_up;  // [2 * ffn_dim, model_dim]: gate rows, then up rows
    ops::PackedWeight w_down;     // [model_dim, ffn_dim]
    const Tensor* attn_norm = nullptr;  // [model_dim]
    const Tensor* ffn_norm = nullptr;   // [model_dim]
  };
  struct Activations;

  void validate_tokens(const NestedTensor& token_ids) const;
  void run_layers(Activations& act, const ForwardOptions& options) const;

  LlamaConfig config_;
  ops::WeightType weight_type_ = ops::WeightType::f32;
  WeightMap weights_;
  std::vector<Layer> layers_;
  std::vector<float> inv_freq_;  // [head_dim / 2]
  const Tensor* embedding_ = nullptr;    // [vocab_size, model_dim]
  const Tensor* output_norm_ = nullptr;  // [model_dim]
  ops::PackedWeight output_;             // [vocab_size, model_dim] (a packed copy of the embedding when tied)
};

// Loads a Llama-family model from a llama2.c .bin, a Hugging Face directory or a GGUF file.
// FileError naming the file and the problem.
LlamaModel load_llama_model(const std::filesystem::path& path, ops::WeightType weight_type = ops::WeightType::f32);

}  // namespace jagged
