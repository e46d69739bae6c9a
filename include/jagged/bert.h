// BERT-family encoder (BERT, MiniLM, BGE, E5) on nested batches, and its padded twin: last hidden states,
// pooled sentence embeddings (cls / mean / max, optionally L2-normalised) and sequence classification.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "jagged/forward.h"
#include "jagged/model_config.h"
#include "jagged/nested_tensor.h"
#include "jagged/ops.h"
#include "jagged/pooling.h"

namespace jagged {

// Weights (canonical names, model_config.h), each linear layer with its bias:
//   token_embd, position_embd [context_length, dim], token_types [type_vocab_size, dim], token_embd_norm;
//   per layer attn_q/k/v, attn_output, attn_output_norm, ffn_up, ffn_down, layer_output_norm;
//   optional cls.pooler [dim, dim] (required with a classifier), cls [num_labels, dim] when num_labels > 0;
//   pre_norm models add output_norm (.weight/.bias), the LayerNorm after the last block.
// Blocks: post-norm (BERT)  x = LN1(x + Attn(x));    x = LN2(x + MLP(x))
//         pre-norm          x = x + Attn(LN1(x));    x = x + MLP(LN2(x)); after the last block x = LN_out(x)
// with LN1 = attn_output_norm, LN2 = layer_output_norm, MLP = ffn_down(gelu(ffn_up(x))).
class BertModel {
 public:
  // Validates the config and that every tensor it needs is present with the right shape (InvalidArgument
  // naming the tensor).
  // weight_type: how the projections are stored (f32, or bf16 rounded from the loaded f32).
  BertModel(BertConfig config, WeightMap weights, ops::WeightType weight_type = ops::WeightType::f32);
  // A model of a named real shape with seeded random weights and a 2-label classification head (for
  // benchmarks without files): bert-base, minilm-l6, bert-tiny.
  static BertModel synthetic(const std::string& name, uint64_t seed = 1234, ops::WeightType weight_type = ops::WeightType::f32);
  static std::vector<std::string> synthetic_names();

  BertModel(BertModel&&) noexcept = default;
  BertModel& operator=(BertModel&&) noexcept = default;

  const BertConfig& config() const { return config_; }
  int64_t parameter_count() const;
  bool has_classifier() const { return classifier_.defined(); }

  // token_ids: nested [num_tokens] i32, ids in [0, vocab_size), each sequence at most context_length long, at
  // least one sequence. token_types: [num_tokens] i32 in packed order, each in [0, type_vocab_size); the
  // overloads without it use type 0 everywhere. options.last_token_logits is ignored.
  //
  // Last hidden states [num_tokens, model_dim] f32: real tokens only, in packed order, for both layouts.
  Tensor forward(const NestedTensor& token_ids, const ForwardOptions& options = {}) const;
  Tensor forward(const NestedTensor& token_ids, const Tensor& token_types, const ForwardOptions& options = {}) const;

  // One embedding per sequence [num_seqs, model_dim] f32: the last hidden states pooled over each sequence's
  // real tokens, then divided by their L2 norm when `normalize`. An empty sequence embeds to zeros.
  Tensor embed(const NestedTensor& token_ids, Pooling pooling, bool normalize, const ForwardOptions& options = {}) const;
  Tensor embed(const NestedTensor& token_ids, const Tensor& token_types, Pooling pooling, bool normalize,
               const ForwardOptions& options = {}) const;

  // Sequence-classification logits [num_seqs, num_labels] f32: classifier(tanh(pooler(hidden state of the first
  // token))). Needs a classification head (num_labels > 0) and a non-empty sequence each.
  Tensor classify(const NestedTensor& token_ids, const ForwardOptions& options = {}) const;
  Tensor classify(const NestedTensor& token_ids, const Tensor& token_types, const ForwardOptions& options = {}) const;

  // A copy of the weights under their canonical names (model_config.h), for exporting and tests.
  WeightMap canonical_weights() const;

 private:
  struct LayerNorm {
    const Tensor* weight = nullptr;  // [model_dim]
    const Tensor* bias = nullptr;    // [model_dim]
  };
  struct Layer {
    // Projections packed for ops::linear (the model's only copy of them).
    ops::PackedWeight wqkv;          // [3 * model_dim, model_dim]: q rows, then k, then v
    Tensor bqkv;                     // [3 * model_dim]
    ops::PackedWeight wo;            // [model_dim, model_dim]
    const Tensor* bo = nullptr;      // [model_dim]
    ops::PackedWeight w_up;          // [ffn_dim, model_dim]
    const Tensor* b_up = nullptr;    // [ffn_dim]
    ops::PackedWeight w_down;        // [model_dim, ffn_dim]
    const Tensor* b_down = nullptr;  // [model_dim]
    LayerNorm attn_norm;             // attn_output_norm
    LayerNorm mlp_norm;              // layer_output_norm
  };
  struct Activations;

  void validate_inputs(const NestedTensor& token_ids, const Tensor* token_types) const;
  // Embeddings and every block: leaves the last hidden states in act.x.
  void encode(const NestedTensor& token_ids, const Tensor* token_types, const ForwardOptions& options,
              Activations& act) const;
  void run_layers(Activations& act, const ForwardOptions& options) const;
  Tensor forward_impl(const NestedTensor& token_ids, const Tensor* token_types, const ForwardOptions& options) const;
  Tensor embed_impl(const NestedTensor& token_ids, const Tensor* token_types, Pooling pooling, bool normalize,
                    const ForwardOptions& options) const;
  Tensor classify_impl(const NestedTensor& token_ids, const Tensor* token_types, const ForwardOptions& options) const;

  BertConfig config_;
  WeightMap weights_;
  std::vector<Layer> layers_;
  const Tensor* token_embedding_ = nullptr;     // [vocab_size, model_dim]
  const Tensor* position_embedding_ = nullptr;  // [context_length, model_dim]
  const Tensor* type_embedding_ = nullptr;      // [type_vocab_size, model_dim]
  LayerNorm embedding_norm_;
  LayerNorm output_norm_;                       // pre_norm only
  ops::PackedWeight pooler_weight_;             // [model_dim, model_dim] or undefined
  const Tensor* pooler_bias_ = nullptr;         // [model_dim] or null
  ops::PackedWeight classifier_;                // [num_labels, model_dim] or undefined
  const Tensor* classifier_bias_ = nullptr;     // [num_labels] or null
};

// Loads a BERT-family encoder from a Hugging Face directory or a GGUF file. FileError naming the file and the
// problem.
BertModel load_bert_model(const std::filesystem::path& path, ops::WeightType weight_type = ops::WeightType::f32);

}  // namespace jagged
