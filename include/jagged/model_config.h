// Model configurations, filled by the loaders (src/io) from the model files and consumed by the models
// (src/models). Weight tensors travel from loader to model in a WeightMap under canonical names (below).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "jagged/ops.h"
#include "jagged/tensor.h"

namespace jagged {

// Llama-family decoder (Llama 2/3, TinyLlama, SmolLM, Qwen2, llama2.c).
struct LlamaConfig {
  int64_t model_dim = 0;
  int64_t ffn_dim = 0;
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;  // usually model_dim / num_heads
  int64_t vocab_size = 0;
  int64_t context_length = 0;
  float rope_theta = 10000.0f;
  ops::RopeScaling rope_scaling;                  // Llama 3.x
  ops::RopePairs rope_pairs = ops::RopePairs::adjacent;  // how q/k weights are laid out in the file
  float norm_eps = 1e-5f;
  bool tied_output = true;   // LM head is the token embedding
  bool qkv_bias = false;     // Qwen2
  int32_t bos_id = 1;
  int32_t eos_id = 2;
};

// BERT-family encoder (BERT, MiniLM, BGE, E5).
struct BertConfig {
  int64_t model_dim = 0;
  int64_t ffn_dim = 0;
  int num_layers = 0;
  int num_heads = 0;
  int64_t vocab_size = 0;
  int64_t context_length = 512;  // max_position_embeddings
  int64_t type_vocab_size = 2;
  float norm_eps = 1e-12f;
  ops::GeluForm gelu = ops::GeluForm::erf;
  bool pre_norm = false;      // post-LayerNorm (original BERT) unless set
  int64_t num_labels = 0;     // > 0: a sequence-classification head is present
  std::vector<std::string> labels;  // id2label names in id order (num_labels of them), or empty when unnamed
};

// Canonical tensor names (GGUF's), shapes in PyTorch order [out_features, in_features], all f32 after load:
//   token_embd.weight [vocab, dim]            output_norm.weight [dim]        output.weight [vocab, dim] (untied)
//   blk.N.attn_norm.weight [dim]              blk.N.ffn_norm.weight [dim]
//   blk.N.attn_q.weight [heads*head_dim, dim] blk.N.attn_k.weight / attn_v.weight [kv_heads*head_dim, dim]
//   blk.N.attn_q.bias / attn_k.bias / attn_v.bias (Qwen2)   blk.N.attn_output.weight [dim, heads*head_dim]
//   blk.N.ffn_gate.weight [ffn, dim] (w1)     blk.N.ffn_up.weight [ffn, dim] (w3)   blk.N.ffn_down.weight [dim, ffn] (w2)
// BERT: token_embd, position_embd, token_types (.weight), token_embd_norm (.weight/.bias), blk.N.attn_q/k/v,
//   attn_output, attn_output_norm, ffn_up, ffn_down, layer_output_norm (.weight/.bias), cls.weight/bias
//   (classifier [num_labels, dim]), cls.pooler.weight/bias (pooler dense [dim, dim]).
using WeightMap = std::map<std::string, Tensor>;

}  // namespace jagged
