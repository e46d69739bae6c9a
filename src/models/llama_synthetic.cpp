// Named real Llama-family shapes with seeded random weights: benchmarks of real model sizes without files.
#include <map>

#include "jagged/llama.h"
#include "models/synthetic_weights.h"

namespace jagged {
namespace {

LlamaConfig shape(int64_t model_dim, int64_t ffn_dim, int layers, int heads, int kv_heads, int64_t vocab,
                  int64_t context, float theta, bool tied) {
  LlamaConfig config;
  config.model_dim = model_dim;
  config.ffn_dim = ffn_dim;
  config.num_layers = layers;
  config.num_heads = heads;
  config.num_kv_heads = kv_heads;
  config.head_dim = static_cast<int>(model_dim / heads);
  config.vocab_size = vocab;
  config.context_length = context;
  config.rope_theta = theta;
  config.tied_output = tied;
  config.rope_pairs = ops::RopePairs::halves;
  return config;
}

const std::map<std::string, LlamaConfig>& synthetic_shapes() {
  static const std::map<std::string, LlamaConfig> shapes = [] {
    std::map<std::string, LlamaConfig> table;
    table["tiny"] = shape(64, 128, 2, 4, 2, 256, 512, 10000.0f, false);
    table["stories15m"] = shape(288, 768, 6, 6, 6, 32000, 256, 10000.0f, true);
    table["stories15m"].rope_pairs = ops::RopePairs::adjacent;
    table["smollm-135m"] = shape(576, 1536, 30, 9, 3, 49152, 2048, 10000.0f, true);
    table["tinyllama-1.1b"] = shape(2048, 5632, 22, 32, 4, 32000, 2048, 10000.0f, false);
    LlamaConfig llama32 = shape(2048, 8192, 16, 32, 8, 128256, 131072, 500000.0f, true);
    llama32.rope_scaling = {32.0f, 1.0f, 4.0f, 8192};
    llama32.bos_id = 128000;
    llama32.eos_id = 128001;
    table["llama-3.2-1b"] = llama32;
    LlamaConfig qwen2 = shape(896, 4864, 24, 14, 2, 151936, 32768, 1000000.0f, true);
    qwen2.qkv_bias = true;
    qwen2.norm_eps = 1e-6f;
    table["qwen2-0.5b"] = qwen2;
    return table;
  }();
  return shapes;
}

}  // namespace

std::vector<std::string> LlamaModel::synthetic_names() {
  std::vector<std::string> names;
  for (const auto& entry : synthetic_shapes()) names.push_back(entry.first);
  return names;
}

LlamaModel LlamaModel::synthetic(const std::string& name, uint64_t seed, ops::WeightType weight_type) {
  const auto found = synthetic_shapes().find(name);
  if (found == synthetic_shapes().end()) {
    std::string known;
    for (const auto& entry : synthetic_shapes()) known += " " + entry.first;
    throw InvalidArgument(concat("unknown synthetic model '", name, "'; known:", known));
  }
  const LlamaConfig& c = found->second;
  const int64_t q_dim = int64_t{c.num_heads} * c.head_dim;
  const int64_t kv_dim = int64_t{c.num_kv_heads} * c.head_dim;
  WeightMap weights;
  auto matrix = [&](const std::string& key, int64_t out, int64_t in) {
    weights[key] = models::synthetic_matrix(out, in, seed, key);
  };
  auto vector = [&](const std::string& key, int64_t size, float center, float half_width) {
    weights[key] = models::synthetic_tensor({size}, seed, key, center, half_width);
  };
  weights["token_embd.weight"] = models::synthetic_tensor({c.vocab_size, c.model_dim}, seed, "token_embd.weight", 0.0f, 1.0f);
  vector("output_norm.weight", c.model_dim, 1.0f, 0.1f);
  if (!c.tied_output) matrix("output.weight", c.vocab_size, c.model_dim);
  for (int i = 0; i < c.num_layers; ++i) {
    const std::string prefix = concat("blk.", i, ".");
    matrix(prefix + "attn_q.weight", q_dim, c.model_dim);
    matrix(prefix + "attn_k.weight", kv_dim, c.model_dim);
    matrix(prefix + "attn_v.weight", kv_dim, c.model_dim);
    if (c.qkv_bias) {
      vector(prefix + "attn_q.bias", q_dim, 0.0f, 0.1f);
      vector(prefix + "attn_k.bias", kv_dim, 0.0f, 0.1f);
      vector(prefix + "attn_v.bias", kv_dim, 0.0f, 0.1f);
    }
    matrix(prefix + "attn_output.weight", c.model_dim, q_dim);
    matrix(prefix + "ffn_gate.weight", c.ffn_dim, c.model_dim);
    matrix(prefix + "ffn_up.weight", c.ffn_dim, c.model_dim);
    matrix(prefix + "ffn_down.weight", c.model_dim, c.ffn_dim);
    vector(prefix + "attn_norm.weight", c.model_dim, 1.0f, 0.1f);
    vector(prefix + "ffn_norm.weight", c.model_dim, 1.0f, 0.1f);
  }
  return LlamaModel(c, std::move(weights), weight_type);
}

}  // namespace jagged
