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
#include "jagged/paged_kv.h"
#include "jagged/profile.h"

namespace jagged {

// One step of generation for any number of sequences: each sequence's new tokens (a whole prompt, a prefill
// chunk or one decode token), the keys it already has in the paged KV cache, and which rows need logits.
// Prefill, chunked prefill and decode are the same call.
struct TokenBatch {
  std::span<const int32_t> token_ids;   // [num_tokens] new tokens of every sequence, packed (kv.cu_seqlens)
  PagedKvBatch kv;                      // offsets, context lengths (= each sequence's first position), block tables
  std::span<const int32_t> logit_rows;  // token rows whose logits are computed, in any order
};

class LlamaModel;

// Activations of cached forwards for up to max_tokens tokens and max_logit_rows logit rows, allocated once and
// reused by every step: a step allocates nothing.
class LlamaWorkspace {
 public:
  LlamaWorkspace() = default;
  int64_t max_tokens() const { return max_tokens_; }
  int64_t max_logit_rows() const { return max_logit_rows_; }
  int64_t bytes() const;

 private:
  friend class LlamaModel;
  int64_t max_tokens_ = 0;
  int64_t max_logit_rows_ = 0;
  int threads_ = 0;
  Tensor positions_;  // [max_tokens] i32
  Tensor rotations_;  // [max_tokens, 2 * head_dim] RoPE's cosines and sines of each token's position
  Tensor x_;          // [max_tokens, model_dim] residual stream
  Tensor scratch_;    // [max_tokens, model_dim] norm output, then projection output
  Tensor qkv_;        // [max_tokens, (num_heads + 2 * num_kv_heads) * head_dim]
  Tensor attn_;       // [max_tokens, num_heads * head_dim]
  Tensor gate_up_;    // [max_tokens, 2 * ffn_dim]
  Tensor mlp_;        // [max_tokens, ffn_dim]
  Tensor hidden_;     // [max_logit_rows, model_dim]
  Tensor logits_;     // [max_logit_rows, vocab_size]
  Tensor attention_;  // attention's per-thread scratch, u8
};

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
  // How each projection is stored, in order: per layer qkv, output, gate_up, down (a fused projection whose parts
  // differ in type: each part); then the LM head. A GGUF file's block types are kept (a Q4_K_M file gives q4_k,
  // q6_k... whatever weight_type says); weight_type applies to f32/f16 tensors.
  std::vector<ops::WeightType> projection_types() const;
  // Bytes of every packed projection and the LM head as held in memory (what a decode step streams).
  int64_t projection_bytes() const;

  // token_ids: nested [num_tokens] i32, each id in [0, vocab_size), each sequence at most context_length long.
  // Returns logits [num_tokens, vocab_size] f32 (real tokens only, in packed order), or with last_token_logits
  // [num_seqs, vocab_size] (every sequence then needs at least one token). Both layouts return the same form.
  Tensor forward(const NestedTensor& token_ids, const ForwardOptions& options = {}) const;

  // A workspace for forward(TokenBatch) calls of up to max_tokens tokens and max_logit_rows logit rows, for the
  // current OpenMP thread count.
  LlamaWorkspace make_workspace(int64_t max_tokens, int64_t max_logit_rows) const;
  // One generation step over a paged KV cache (cache: one PagedKvLayer per layer). Writes the new tokens' keys
  // and values into their blocks and returns logits [logit_rows, vocab_size], a view into the workspace valid
  // until its next use. Every row's logits are bit-identical to forward(NestedTensor) of its whole sequence,
  // whatever else shares the step and however the sequence's tokens were split into steps.
  ConstMatrixView forward(const TokenBatch& batch, std::span<const PagedKvLayer> cache, LlamaWorkspace& workspace,
                          StageProfile* profile = nullptr) const;

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
  const ops::PackedWeight& embedding_table() const { return embedding_is_output_ ? output_ : embedding_; }
  void run_layers(Activations& act, const ForwardOptions& options) const;

  LlamaConfig config_;
  ops::WeightType weight_type_ = ops::WeightType::f32;
  WeightMap weights_;
  std::vector<Layer> layers_;
  std::vector<float> inv_freq_;  // [head_dim / 2]
  const Tensor* output_norm_ = nullptr;  // [model_dim]
  ops::PackedWeight output_;             // [vocab_size, model_dim] (a packed copy of the embedding when tied)
  // The lookup table [vocab_size, model_dim], kept as the file has it (f32, or its block type), packed: rows are
  // unpacked exactly at lookup. Undefined when the tied head holds the same values (embedding_is_output_).
  ops::PackedWeight embedding_;
  bool embedding_is_output_ = false;
};

// Loads a Llama-family model from a llama2.c .bin, a Hugging Face directory or a GGUF file.
// FileError naming the file and the problem.
LlamaModel load_llama_model(const std::filesystem::path& path, ops::WeightType weight_type = ops::WeightType::f32);

}  // namespace jagged
