// The BERT-family encoder. One encoder serves both layouts: the nested batch runs every op over the real tokens
// only and bidirectional attention per sequence; the padded twin runs every op over num_seqs x max_seqlen
// positions with the key-padding-masked attention frameworks use. Activations are allocated once per forward.
#include "jagged/bert.h"

#include <cmath>
#include <cstring>

#include "jagged/ops.h"
#include "models/batch_geometry.h"
#include "models/weight_helpers.h"

namespace jagged {
namespace {

using models::concat_rows;
using models::layer_name;
using models::slice_rows;

const Tensor& require_weight(const WeightMap& weights, const std::string& name, const Shape& shape) {
  return models::require_weight(weights, name, shape, "bert");
}

// The per-layer tensors the model keeps only as fused or packed copies.
constexpr const char* kPackedLayerWeights[] = {"attn_q.weight",      "attn_k.weight", "attn_v.weight",
                                               "attn_q.bias",        "attn_k.bias",   "attn_v.bias",
                                               "attn_output.weight", "ffn_up.weight", "ffn_down.weight"};


// The BERT pooler's activation, on the [num_seqs, model_dim] pooled rows only: too small to need a kernel.
void tanh_in_place(Tensor& x) {
  float* values = x.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) values[i] = std::tanh(values[i]);
}

}  // namespace

struct BertModel::Activations : models::BatchGeometry {
  std::vector<int64_t> lengths;      // [num_seqs]
  Tensor x;                          // [rows, model_dim] residual stream; the last hidden states at the end
  Tensor scratch;                    // [rows, model_dim] embedding lookups, norm output, projection output
  Tensor qkv;                        // [rows, 3 * model_dim]
  Tensor attn;                       // [rows, model_dim]
  Tensor mlp;                        // [rows, ffn_dim]

  void free_layer_buffers() {
    scratch = Tensor();
    qkv = Tensor();
    attn = Tensor();
    mlp = Tensor();
  }
};

BertModel::BertModel(BertConfig config, WeightMap weights, ops::WeightType weight_type)
    : config_(std::move(config)), weights_(std::move(weights)) {
  const BertConfig& c = config_;
  if (c.model_dim <= 0 || c.ffn_dim <= 0 || c.num_layers <= 0 || c.num_heads <= 0 || c.vocab_size <= 0 ||
      c.context_length <= 0 || c.type_vocab_size <= 0) {
    throw InvalidArgument(concat("bert config: all sizes must be positive (model_dim ", c.model_dim, ", ffn_dim ",
                                 c.ffn_dim, ", layers ", c.num_layers, ", heads ", c.num_heads, ", vocab ",
                                 c.vocab_size, ", context ", c.context_length, ", type vocab ", c.type_vocab_size, ")"));
  }
  if (c.model_dim % c.num_heads != 0) {
    throw InvalidArgument(concat("bert config: num_heads ", c.num_heads, " does not divide model_dim ", c.model_dim));
  }
  if (!(c.norm_eps > 0.0f) || !std::isfinite(c.norm_eps)) {
    throw InvalidArgument(concat("bert config: norm_eps must be positive and finite, got ", c.norm_eps));
  }
  if (c.num_labels < 0) throw InvalidArgument(concat("bert config: num_labels ", c.num_labels, " is negative"));
  if (!c.labels.empty() && static_cast<int64_t>(c.labels.size()) != c.num_labels) {
    throw InvalidArgument(concat("bert config: ", c.labels.size(), " label names for num_labels ", c.num_labels));
  }
  const int64_t dim = c.model_dim;
  auto norm = [&](const std::string& stem) {
    return LayerNorm{&require_weight(weights_, stem + ".weight", {dim}), &require_weight(weights_, stem + ".bias", {dim})};
  };

  token_embedding_ = &require_weight(weights_, "token_embd.weight", {c.vocab_size, dim});
  position_embedding_ = &require_weight(weights_, "position_embd.weight", {c.context_length, dim});
  type_embedding_ = &require_weight(weights_, "token_types.weight", {c.type_vocab_size, dim});
  embedding_norm_ = norm("token_embd_norm");
  if (c.pre_norm) output_norm_ = norm("output_norm");

  for (int i = 0; i < c.num_layers; ++i) {
    Layer layer;
    auto weight = [&](const char* suffix, const Shape& shape) -> const Tensor& {
      return require_weight(weights_, layer_name(i, suffix), shape);
    };
    layer.wqkv = ops::PackedWeight(concat_rows({&weight("attn_q.weight", {dim, dim}),
                                                &weight("attn_k.weight", {dim, dim}), &weight("attn_v.weight", {dim, dim})}),
                                   weight_type);
    layer.bqkv = concat_rows({&weight("attn_q.bias", {dim}), &weight("attn_k.bias", {dim}), &weight("attn_v.bias", {dim})});
    layer.wo = ops::PackedWeight(weight("attn_output.weight", {dim, dim}), weight_type);
    layer.bo = &weight("attn_output.bias", {dim});
    layer.w_up = ops::PackedWeight(weight("ffn_up.weight", {c.ffn_dim, dim}), weight_type);
    layer.b_up = &weight("ffn_up.bias", {c.ffn_dim});
    layer.w_down = ops::PackedWeight(weight("ffn_down.weight", {dim, c.ffn_dim}), weight_type);
    layer.b_down = &weight("ffn_down.bias", {dim});
    layer.attn_norm = norm(layer_name(i, "attn_output_norm"));
    layer.mlp_norm = norm(layer_name(i, "layer_output_norm"));
    // The fused and packed copies replace the originals: keep one copy of each matrix in memory.
    for (const char* replaced : kPackedLayerWeights) weights_.erase(layer_name(i, replaced));
    layers_.push_back(std::move(layer));
  }

  // The pooler is optional for embedding models; the classifier needs it.
  if (c.num_labels > 0 || weights_.count("cls.pooler.weight") > 0 || weights_.count("cls.pooler.bias") > 0) {
    pooler_weight_ = ops::PackedWeight(require_weight(weights_, "cls.pooler.weight", {dim, dim}), weight_type);
    weights_.erase("cls.pooler.weight");
    pooler_bias_ = &require_weight(weights_, "cls.pooler.bias", {dim});
  }
  if (c.num_labels > 0) {
    classifier_ = ops::PackedWeight(require_weight(weights_, "cls.weight", {c.num_labels, dim}), weight_type);
    weights_.erase("cls.weight");
    classifier_bias_ = &require_weight(weights_, "cls.bias", {c.num_labels});
  }
  models::own_file_backed(weights_);  // the tables and norms: see LlamaModel
}

WeightMap BertModel::canonical_weights() const {
  const int64_t dim = config_.model_dim;
  WeightMap out;
  for (const auto& [name, tensor] : weights_) out[name] = tensor.clone();
  if (pooler_weight_.defined()) out["cls.pooler.weight"] = pooler_weight_.unpack();
  if (classifier_.defined()) out["cls.weight"] = classifier_.unpack();
  for (int i = 0; i < config_.num_layers; ++i) {
    const Layer& layer = layers_[static_cast<size_t>(i)];
    const Tensor wqkv = layer.wqkv.unpack();
    out[layer_name(i, "attn_q.weight")] = slice_rows(wqkv, 0, dim);
    out[layer_name(i, "attn_k.weight")] = slice_rows(wqkv, dim, 2 * dim);
    out[layer_name(i, "attn_v.weight")] = slice_rows(wqkv, 2 * dim, 3 * dim);
    out[layer_name(i, "attn_output.weight")] = layer.wo.unpack();
    out[layer_name(i, "ffn_up.weight")] = layer.w_up.unpack();
    out[layer_name(i, "ffn_down.weight")] = layer.w_down.unpack();
    out[layer_name(i, "attn_q.bias")] = slice_rows(layer.bqkv, 0, dim);
    out[layer_name(i, "attn_k.bias")] = slice_rows(layer.bqkv, dim, 2 * dim);
    out[layer_name(i, "attn_v.bias")] = slice_rows(layer.bqkv, 2 * dim, 3 * dim);
  }
  return out;
}

int64_t BertModel::parameter_count() const {
  // weights_ holds everything but the fused and packed copies (and no tensor the model does not use: the
  // loaders reject unexpected tensors).
  int64_t count = pooler_weight_.numel() + classifier_.numel();
  for (const auto& entry : weights_) count += entry.second.numel();
  for (const Layer& layer : layers_) {
    count += layer.wqkv.numel() + layer.bqkv.numel() + layer.wo.numel() + layer.w_up.numel() + layer.w_down.numel();
  }
  return count;
}

void BertModel::validate_inputs(const NestedTensor& token_ids, const Tensor* token_types) const {
  models::validate_token_batch(token_ids, config_.vocab_size, config_.context_length, "bert");
  if (token_types == nullptr) return;
  check_shape(*token_types, {token_ids.num_tokens()}, "bert forward: token_types", DType::i32);
  const int32_t* types = token_types->data<int32_t>();
  for (int64_t t = 0; t < token_ids.num_tokens(); ++t) {
    if (types[t] < 0 || types[t] >= config_.type_vocab_size) {
      throw InvalidArgument(concat("token type ", types[t], " at packed position ", t, " is outside [0, ",
                                   config_.type_vocab_size, ")"));
    }
  }
}

void BertModel::encode(const NestedTensor& token_ids, const Tensor* token_types, const ForwardOptions& options,
                       Activations& act) const {
  validate_inputs(token_ids, token_types);
  const BertConfig& c = config_;
  act.layout = options.layout;
  act.num_seqs = token_ids.num_seqs();
  act.max_seqlen = token_ids.max_seqlen();
  act.lengths = token_ids.seqlens();
  Tensor padded_ids;  // padded: [rows] i32
  Tensor positions;   // [rows] i32
  Tensor types;       // [rows] i32, when not token_types itself
  {
    StageTimer timer(options.profile, options.layout == BatchLayout::padded ? "pad" : "embedding");
    if (options.layout == BatchLayout::nested) {
      act.rows = token_ids.num_tokens();
      act.cu_seqlens.assign(token_ids.cu_seqlens().begin(), token_ids.cu_seqlens().end());
      positions = ops::token_positions(act.cu_seqlens);
      if (token_types == nullptr) types = Tensor::zeros({act.rows}, DType::i32);
    } else {
      act.rows = act.num_seqs * act.max_seqlen;
      PaddedTensor padded = token_ids.to_padded(0.0);  // padding gets id 0 ([PAD] in BERT vocabularies)
      padded_ids = std::move(padded.values);
      padded_ids.reshape({act.rows});
      act.key_padding_mask = std::move(padded.mask);
      const std::vector<int64_t> full(static_cast<size_t>(act.num_seqs), act.max_seqlen);
      positions = ops::token_positions(cu_seqlens_from_lengths(full));
      if (token_types == nullptr) {
        types = Tensor::zeros({act.rows}, DType::i32);
      } else {
        const std::vector<int32_t> offsets(token_ids.cu_seqlens().begin(), token_ids.cu_seqlens().end());
        types = std::move(NestedTensor(token_types->clone(), offsets).to_padded(0.0).values);
        types.reshape({act.rows});
      }
    }
  }
  act.x = Tensor({act.rows, c.model_dim});
  act.scratch = Tensor({act.rows, c.model_dim});
  act.qkv = Tensor({act.rows, 3 * c.model_dim});
  act.attn = Tensor({act.rows, c.model_dim});
  act.mlp = Tensor({act.rows, c.ffn_dim});
  if (act.rows == 0) return;  // only empty sequences: nothing to compute
  {
    StageTimer timer(options.profile, "embedding");
    const bool nested = options.layout == BatchLayout::nested;
    // Hugging Face's order: word + token type, then + position.
    ops::embedding(nested ? token_ids.values() : padded_ids, *token_embedding_, act.x);
    ops::embedding(types.defined() ? types : *token_types, *type_embedding_, act.scratch);
    ops::add(act.x, act.scratch);
    ops::embedding(positions, *position_embedding_, act.scratch);
    ops::add(act.x, act.scratch);
    ops::layernorm(act.x, *embedding_norm_.weight, *embedding_norm_.bias, c.norm_eps, act.x);
  }
  run_layers(act, options);
  if (c.pre_norm) {
    StageTimer timer(options.profile, "final_norm");
    ops::layernorm(act.x, *output_norm_.weight, *output_norm_.bias, c.norm_eps, act.x);
  }
}

void BertModel::run_layers(Activations& act, const ForwardOptions& options) const {
  const BertConfig& c = config_;
  const int64_t dim = c.model_dim;
  const int head_dim = static_cast<int>(dim / c.num_heads);
  const ops::AttentionConfig attention{c.num_heads, c.num_heads, head_dim, 0.0f, /*causal=*/false};
  const MatrixView qkv = act.qkv.matrix();
  const MatrixView q = qkv.columns(0, dim);
  const MatrixView k = qkv.columns(dim, 2 * dim);
  const MatrixView v = qkv.columns(2 * dim, 3 * dim);
  StageProfile* profile = options.profile;
  // Pre-norm blocks read normalised copies (in scratch); post-norm blocks read the residual stream itself.
  const Tensor& block_input = c.pre_norm ? act.scratch : act.x;

  for (const Layer& layer : layers_) {
    if (c.pre_norm) {
      StageTimer timer(profile, "attn_norm");
      ops::layernorm(act.x, *layer.attn_norm.weight, *layer.attn_norm.bias, c.norm_eps, act.scratch);
    }
    {
      StageTimer timer(profile, "qkv_proj");
      ops::linear(block_input, layer.wqkv, &layer.bqkv, act.qkv);
    }
    {
      StageTimer timer(profile, "attention");
      act.attention(q, k, v, act.attn.matrix(), attention);
    }
    {
      StageTimer timer(profile, "attn_output");
      ops::linear(act.attn, layer.wo, layer.bo, act.scratch);
      ops::add(act.x, act.scratch);
    }
    if (c.pre_norm) {
      StageTimer timer(profile, "mlp_norm");
      ops::layernorm(act.x, *layer.mlp_norm.weight, *layer.mlp_norm.bias, c.norm_eps, act.scratch);
    } else {
      StageTimer timer(profile, "attn_norm");
      ops::layernorm(act.x, *layer.attn_norm.weight, *layer.attn_norm.bias, c.norm_eps, act.x);
    }
    {
      StageTimer timer(profile, "mlp");
      ops::linear(block_input, layer.w_up, layer.b_up, act.mlp);
      ops::gelu(act.mlp, c.gelu);
      ops::linear(act.mlp, layer.w_down, layer.b_down, act.scratch);
      ops::add(act.x, act.scratch);
    }
    if (!c.pre_norm) {
      StageTimer timer(profile, "mlp_norm");
      ops::layernorm(act.x, *layer.mlp_norm.weight, *layer.mlp_norm.bias, c.norm_eps, act.x);
    }
  }
}

Tensor BertModel::forward_impl(const NestedTensor& token_ids, const Tensor* token_types,
                               const ForwardOptions& options) const {
  Activations act;
  encode(token_ids, token_types, options, act);
  act.free_layer_buffers();
  if (options.layout == BatchLayout::nested) return std::move(act.x);
  StageTimer timer(options.profile, "pad");
  act.x.reshape({act.num_seqs, act.max_seqlen, config_.model_dim});
  return std::move(NestedTensor::from_padded(act.x, act.lengths).values());
}

Tensor BertModel::embed_impl(const NestedTensor& token_ids, const Tensor* token_types, Pooling pooling,
                             bool normalize, const ForwardOptions& options) const {
  Activations act;
  encode(token_ids, token_types, options, act);
  act.free_layer_buffers();
  StageTimer timer(options.profile, "pooling");
  Tensor pooled({act.num_seqs, config_.model_dim});
  if (options.layout == BatchLayout::nested) {
    ops::pool(act.x, act.cu_seqlens, pooling, pooled);
  } else {
    ops::pool_padded(act.x, act.key_padding_mask, pooling, pooled);
  }
  if (normalize) ops::l2_normalize(pooled);
  return pooled;
}

Tensor BertModel::classify_impl(const NestedTensor& token_ids, const Tensor* token_types,
                                const ForwardOptions& options) const {
  if (!classifier_.defined()) {
    throw InvalidArgument("bert classify: the model has no sequence-classification head (num_labels is 0)");
  }
  for (int64_t seq = 0; seq < token_ids.num_seqs(); ++seq) {
    if (token_ids.seqlen(seq) == 0) {
      throw InvalidArgument(concat("bert classify: sequence ", seq, " is empty: classification needs its first token"));
    }
  }
  Tensor first = embed_impl(token_ids, token_types, Pooling::cls, /*normalize=*/false, options);  // [num_seqs, dim]
  StageTimer timer(options.profile, "classifier");
  Tensor pooled({first.dim(0), config_.model_dim});
  ops::linear(first, pooler_weight_, pooler_bias_, pooled);
  tanh_in_place(pooled);
  Tensor logits({first.dim(0), config_.num_labels});
  ops::linear(pooled, classifier_, classifier_bias_, logits);
  return logits;
}

Tensor BertModel::forward(const NestedTensor& token_ids, const ForwardOptions& options) const {
  return forward_impl(token_ids, nullptr, options);
}
Tensor BertModel::forward(const NestedTensor& token_ids, const Tensor& token_types, const ForwardOptions& options) const {
  return forward_impl(token_ids, &token_types, options);
}
Tensor BertModel::embed(const NestedTensor& token_ids, Pooling pooling, bool normalize,
                        const ForwardOptions& options) const {
  return embed_impl(token_ids, nullptr, pooling, normalize, options);
}
Tensor BertModel::embed(const NestedTensor& token_ids, const Tensor& token_types, Pooling pooling, bool normalize,
                        const ForwardOptions& options) const {
  return embed_impl(token_ids, &token_types, pooling, normalize, options);
}
Tensor BertModel::classify(const NestedTensor& token_ids, const ForwardOptions& options) const {
  return classify_impl(token_ids, nullptr, options);
}
Tensor BertModel::classify(const NestedTensor& token_ids, const Tensor& token_types,
                           const ForwardOptions& options) const {
  return classify_impl(token_ids, &token_types, options);
}

}  // namespace jagged
