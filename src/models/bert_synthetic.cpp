// Named real BERT-family shapes with seeded random weights: benchmarks of real model sizes without files.
#include <map>

#include "jagged/bert.h"
#include "models/synthetic_weights.h"

namespace jagged {
namespace {

BertConfig shape(int64_t model_dim, int64_t ffn_dim, int layers, int heads, int64_t vocab, int64_t context) {
  BertConfig config;
  config.model_dim = model_dim;
  config.ffn_dim = ffn_dim;
  config.num_layers = layers;
  config.num_heads = heads;
  config.vocab_size = vocab;
  config.context_length = context;
  config.type_vocab_size = 2;
  config.num_labels = 2;  // every synthetic model can also classify
  return config;
}

const std::map<std::string, BertConfig>& synthetic_shapes() {
  static const std::map<std::string, BertConfig> shapes = [] {
    std::map<std::string, BertConfig> table;
    table["bert-tiny"] = shape(64, 128, 2, 4, 256, 512);
    table["minilm-l6"] = shape(384, 1536, 6, 12, 30522, 512);  // all-MiniLM-L6-v2
    table["bert-base"] = shape(768, 3072, 12, 12, 30522, 512);  // bert-base-uncased
    return table;
  }();
  return shapes;
}

}  // namespace

std::vector<std::string> BertModel::synthetic_names() {
  std::vector<std::string> names;
  for (const auto& entry : synthetic_shapes()) names.push_back(entry.first);
  return names;
}

BertModel BertModel::synthetic(const std::string& name, uint64_t seed, ops::WeightType weight_type) {
  const auto found = synthetic_shapes().find(name);
  if (found == synthetic_shapes().end()) {
    std::string known;
    for (const auto& entry : synthetic_shapes()) known += " " + entry.first;
    throw InvalidArgument(concat("unknown synthetic BERT model '", name, "'; known:", known));
  }
  const BertConfig& c = found->second;
  const int64_t dim = c.model_dim;
  WeightMap weights;
  auto table = [&](const std::string& key, int64_t rows) {
    weights[key] = models::synthetic_tensor({rows, dim}, seed, key, 0.0f, 1.0f);
  };
  auto linear = [&](const std::string& stem, int64_t out, int64_t in) {
    weights[stem + ".weight"] = models::synthetic_matrix(out, in, seed, stem + ".weight");
    weights[stem + ".bias"] = models::synthetic_tensor({out}, seed, stem + ".bias", 0.0f, 0.1f);
  };
  auto norm = [&](const std::string& stem) {
    weights[stem + ".weight"] = models::synthetic_tensor({dim}, seed, stem + ".weight", 1.0f, 0.1f);
    weights[stem + ".bias"] = models::synthetic_tensor({dim}, seed, stem + ".bias", 0.0f, 0.1f);
  };
  table("token_embd.weight", c.vocab_size);
  table("position_embd.weight", c.context_length);
  table("token_types.weight", c.type_vocab_size);
  norm("token_embd_norm");
  for (int i = 0; i < c.num_layers; ++i) {
    const std::string prefix = concat("blk.", i, ".");
    for (const char* projection : {"attn_q", "attn_k", "attn_v", "attn_output"}) linear(prefix + projection, dim, dim);
    norm(prefix + "attn_output_norm");
    linear(prefix + "ffn_up", c.ffn_dim, dim);
    linear(prefix + "ffn_down", dim, c.ffn_dim);
    norm(prefix + "layer_output_norm");
  }
  linear("cls.pooler", dim, dim);
  linear("cls", c.num_labels, dim);
  return BertModel(c, std::move(weights), weight_type);
}

}  // namespace jagged
