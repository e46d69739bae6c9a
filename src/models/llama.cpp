// The Llama-family decoder. One forward serves both layouts: the nested batch runs every op over the real
// tokens only and attention per sequence; the padded twin runs every op over num_seqs x max_seqlen positions
// with the masked attention frameworks use. Activations are allocated once per forward, never per layer.
#include "jagged/llama.h"

#include <omp.h>

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
  return models::require_weight(weights, name, shape, "llama");
}

const Tensor& require_matrix(const WeightMap& weights, const std::string& name, const Shape& shape) {
  return models::require_matrix(weights, name, shape, "llama");
}

}  // namespace

struct LlamaModel::Activations : models::BatchGeometry {
  Tensor positions;                  // [rows] i32
  Tensor rotations;                  // [rows, 2 * head_dim] RoPE's cosines and sines of each row's position
  Tensor x;                          // [rows, model_dim] residual stream
  Tensor scratch;                    // [rows, model_dim] norm output, then projection output
  Tensor qkv;                        // [rows, (num_heads + 2 * num_kv_heads) * head_dim]
  Tensor attn;                       // [rows, num_heads * head_dim]
  Tensor gate_up;                    // [rows, 2 * ffn_dim]
  Tensor mlp;                        // [rows, ffn_dim]
};

LlamaModel::LlamaModel(LlamaConfig config, WeightMap weights, ops::WeightType weight_type)
    : config_(config), weight_type_(weight_type), weights_(std::move(weights)) {
  const LlamaConfig& c = config_;
  if (c.model_dim <= 0 || c.ffn_dim <= 0 || c.num_layers <= 0 || c.num_heads <= 0 || c.num_kv_heads <= 0 ||
      c.head_dim <= 0 || c.vocab_size <= 0 || c.context_length <= 0) {
    throw InvalidArgument(concat("llama config: all sizes must be positive (model_dim ", c.model_dim, ", ffn_dim ",
                                 c.ffn_dim, ", layers ", c.num_layers, ", heads ", c.num_heads, ", kv heads ",
                                 c.num_kv_heads, ", head_dim ", c.head_dim, ", vocab ", c.vocab_size, ", context ",
                                 c.context_length, ")"));
  }
  if (c.num_heads % c.num_kv_heads != 0) {
    throw InvalidArgument(concat("llama config: num_heads ", c.num_heads, " is not a multiple of num_kv_heads ",
                                 c.num_kv_heads));
  }
  if (c.head_dim % 2 != 0) throw InvalidArgument(concat("llama config: head_dim ", c.head_dim, " must be even for RoPE"));
  const int64_t q_dim = int64_t{c.num_heads} * c.head_dim;
  const int64_t kv_dim = int64_t{c.num_kv_heads} * c.head_dim;

  // One copy of the table in memory: a tied head packed without rounding (the table's own block type, or f32)
  // serves the lookups too; otherwise the table is packed apart in its own type (a quantized table never widened).
  const Tensor& table = require_matrix(weights_, "token_embd.weight", {c.vocab_size, c.model_dim});
  const bool table_exact_in_head = is_block_dtype(table.dtype()) || weight_type == ops::WeightType::f32 ||
                                   (table.dtype() == DType::bf16 && weight_type == ops::WeightType::bf16);
  output_ = ops::PackedWeight(
      c.tied_output ? table : require_matrix(weights_, "output.weight", {c.vocab_size, c.model_dim}), weight_type);
  embedding_is_output_ = c.tied_output && table_exact_in_head;
  if (!embedding_is_output_) embedding_ = ops::PackedWeight(table, ops::WeightType::f32);
  table.release_file_pages();
  weights_.erase("token_embd.weight");
  weights_.erase("output.weight");
  output_norm_ = &require_weight(weights_, "output_norm.weight", {c.model_dim});

  for (int i = 0; i < c.num_layers; ++i) {
    Layer layer;
    const Tensor& wq = require_matrix(weights_, layer_name(i, "attn_q.weight"), {q_dim, c.model_dim});
    const Tensor& wk = require_matrix(weights_, layer_name(i, "attn_k.weight"), {kv_dim, c.model_dim});
    const Tensor& wv = require_matrix(weights_, layer_name(i, "attn_v.weight"), {kv_dim, c.model_dim});
    layer.wqkv = models::pack_fused({&wq, &wk, &wv}, weight_type);
    if (c.qkv_bias) {
      layer.bqkv = concat_rows({&require_weight(weights_, layer_name(i, "attn_q.bias"), {q_dim}),
                               &require_weight(weights_, layer_name(i, "attn_k.bias"), {kv_dim}),
                               &require_weight(weights_, layer_name(i, "attn_v.bias"), {kv_dim})});
    }
    layer.wo = ops::PackedWeight(require_matrix(weights_, layer_name(i, "attn_output.weight"), {c.model_dim, q_dim}),
                                 weight_type);
    layer.w_gate_up = models::pack_fused(
        {&require_matrix(weights_, layer_name(i, "ffn_gate.weight"), {c.ffn_dim, c.model_dim}),
         &require_matrix(weights_, layer_name(i, "ffn_up.weight"), {c.ffn_dim, c.model_dim})},
        weight_type);
    layer.w_down = ops::PackedWeight(
        require_matrix(weights_, layer_name(i, "ffn_down.weight"), {c.model_dim, c.ffn_dim}), weight_type);
    layer.attn_norm = &require_weight(weights_, layer_name(i, "attn_norm.weight"), {c.model_dim});
    layer.ffn_norm = &require_weight(weights_, layer_name(i, "ffn_norm.weight"), {c.model_dim});
    // The packed copies replace the originals: keep one copy of each matrix in memory.
    for (const char* fused : {"attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_q.bias", "attn_k.bias",
                              "attn_v.bias", "attn_output.weight", "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"}) {
      weights_.erase(layer_name(i, fused));
    }
    layers_.push_back(std::move(layer));
  }
  inv_freq_ = ops::rope_inv_freq(c.head_dim, c.rope_theta, c.rope_scaling);
  // The norms leave the file mapping too: reading them later would fault the mapping's pages back in, whole
  // folios at a time (2 MiB here: a few norms made the whole released file resident again).
  models::own_file_backed(weights_);
}

std::vector<ops::WeightType> LlamaModel::projection_types() const {
  std::vector<ops::WeightType> types;
  for (const Layer& layer : layers_) {
    for (const ops::PackedWeight* weight : {&layer.wqkv, &layer.wo, &layer.w_gate_up, &layer.w_down}) {
      if (weight->parts().empty()) types.push_back(weight->type());
      for (const ops::PackedWeight& part : weight->parts()) types.push_back(part.type());
    }
  }
  types.push_back(output_.type());
  return types;
}

int64_t LlamaModel::projection_bytes() const {
  size_t bytes = output_.nbytes();
  for (const Layer& layer : layers_) {
    bytes += layer.wqkv.nbytes() + layer.wo.nbytes() + layer.w_gate_up.nbytes() + layer.w_down.nbytes();
  }
  return static_cast<int64_t>(bytes);
}

WeightMap LlamaModel::canonical_weights() const {
  const LlamaConfig& c = config_;
  const int64_t q_dim = int64_t{c.num_heads} * c.head_dim;
  const int64_t kv_dim = int64_t{c.num_kv_heads} * c.head_dim;
  WeightMap out;
  out["token_embd.weight"] = embedding_table().unpack();
  out["output_norm.weight"] = output_norm_->clone();
  if (!c.tied_output) out["output.weight"] = output_.unpack();
  for (int i = 0; i < c.num_layers; ++i) {
    const Layer& layer = layers_[static_cast<size_t>(i)];
    const Tensor wqkv = layer.wqkv.unpack();
    out[layer_name(i, "attn_q.weight")] = slice_rows(wqkv, 0, q_dim);
    out[layer_name(i, "attn_k.weight")] = slice_rows(wqkv, q_dim, q_dim + kv_dim);
    out[layer_name(i, "attn_v.weight")] = slice_rows(wqkv, q_dim + kv_dim, q_dim + 2 * kv_dim);
    if (layer.bqkv.defined()) {
      out[layer_name(i, "attn_q.bias")] = slice_rows(layer.bqkv, 0, q_dim);
      out[layer_name(i, "attn_k.bias")] = slice_rows(layer.bqkv, q_dim, q_dim + kv_dim);
      out[layer_name(i, "attn_v.bias")] = slice_rows(layer.bqkv, q_dim + kv_dim, q_dim + 2 * kv_dim);
    }
    out[layer_name(i, "attn_output.weight")] = layer.wo.unpack();
    const Tensor w_gate_up = layer.w_gate_up.unpack();
    out[layer_name(i, "ffn_gate.weight")] = slice_rows(w_gate_up, 0, c.ffn_dim);
    out[layer_name(i, "ffn_up.weight")] = slice_rows(w_gate_up, c.ffn_dim, 2 * c.ffn_dim);
    out[layer_name(i, "ffn_down.weight")] = layer.w_down.unpack();
    out[layer_name(i, "attn_norm.weight")] = layer.attn_norm->clone();
    out[layer_name(i, "ffn_norm.weight")] = layer.ffn_norm->clone();
  }
  return out;
}

int64_t LlamaModel::parameter_count() const {
  int64_t count = embedding_table().numel() + output_norm_->numel() + (config_.tied_output ? 0 : output_.numel());
  for (const Layer& layer : layers_) {
    count += layer.wqkv.numel() + (layer.bqkv.defined() ? layer.bqkv.numel() : 0) + layer.wo.numel() +
             layer.w_gate_up.numel() + layer.w_down.numel() + layer.attn_norm->numel() + layer.ffn_norm->numel();
  }
  return count;
}

void LlamaModel::validate_tokens(const NestedTensor& token_ids) const {
  models::validate_token_batch(token_ids, config_.vocab_size, config_.context_length, "llama");
}

Tensor LlamaModel::forward(const NestedTensor& token_ids, const ForwardOptions& options) const {
  validate_tokens(token_ids);
  const LlamaConfig& c = config_;
  const int64_t num_seqs = token_ids.num_seqs();
  const std::vector<int64_t> lengths = token_ids.seqlens();
  if (options.last_token_logits) {
    for (int64_t seq = 0; seq < num_seqs; ++seq) {
      if (lengths[seq] == 0) {
        throw InvalidArgument(concat("sequence ", seq, " is empty: last-token logits need at least one token"));
      }
    }
  }

  Activations act;
  act.layout = options.layout;
  act.num_seqs = num_seqs;
  act.max_seqlen = token_ids.max_seqlen();
  Tensor ids;  // [rows] i32
  {
    StageTimer timer(options.profile, options.layout == BatchLayout::padded ? "pad" : "embedding");
    if (options.layout == BatchLayout::nested) {
      act.rows = token_ids.num_tokens();
      act.cu_seqlens.assign(token_ids.cu_seqlens().begin(), token_ids.cu_seqlens().end());
      act.positions = ops::token_positions(act.cu_seqlens);
    } else {
      act.rows = num_seqs * act.max_seqlen;
      PaddedTensor padded = token_ids.to_padded(0.0);
      ids = std::move(padded.values);
      ids.reshape({act.rows});
      act.key_padding_mask = std::move(padded.mask);
      const std::vector<int64_t> full(static_cast<size_t>(num_seqs), act.max_seqlen);
      act.positions = ops::token_positions(cu_seqlens_from_lengths(full));
    }
  }
  const int64_t qkv_dim = int64_t{c.num_heads + 2 * c.num_kv_heads} * c.head_dim;
  act.rotations = Tensor({act.rows, 2 * int64_t{c.head_dim}});
  ops::rope_rotations(act.positions, inv_freq_, c.head_dim, c.rope_pairs, act.rotations);
  act.x = Tensor({act.rows, c.model_dim});
  act.scratch = Tensor({act.rows, c.model_dim});
  act.qkv = Tensor({act.rows, qkv_dim});
  act.attn = Tensor({act.rows, int64_t{c.num_heads} * c.head_dim});
  act.gate_up = Tensor({act.rows, 2 * c.ffn_dim});
  act.mlp = Tensor({act.rows, c.ffn_dim});
  {
    StageTimer timer(options.profile, "embedding");
    ops::embedding(options.layout == BatchLayout::nested ? token_ids.values() : ids, embedding_table(), act.x);
  }

  run_layers(act, options);

  // Rows that reach the LM head: every real token, or each sequence's last one.
  std::vector<int64_t> head_rows;
  if (options.last_token_logits) {
    for (int64_t seq = 0; seq < num_seqs; ++seq) {
      head_rows.push_back(options.layout == BatchLayout::nested ? act.cu_seqlens[seq + 1] - 1
                                                                : seq * act.max_seqlen + lengths[seq] - 1);
    }
  }
  Tensor hidden;  // [head rows, model_dim]
  {
    StageTimer timer(options.profile, "final_norm");
    if (options.last_token_logits) {
      Tensor gathered({static_cast<int64_t>(head_rows.size()), c.model_dim});
      for (size_t i = 0; i < head_rows.size(); ++i) {
        std::memcpy(gathered.data<float>() + i * c.model_dim, act.x.data<float>() + head_rows[i] * c.model_dim,
                    c.model_dim * sizeof(float));
      }
      hidden = std::move(gathered);
    } else {
      hidden = std::move(act.x);
    }
    ops::rmsnorm(hidden, *output_norm_, c.norm_eps, hidden);
  }
  // Free what the head does not need before it allocates the logits.
  act.qkv = Tensor();
  act.attn = Tensor();
  act.gate_up = Tensor();
  act.mlp = Tensor();
  act.scratch = Tensor();
  Tensor logits({hidden.dim(0), c.vocab_size});
  {
    StageTimer timer(options.profile, "lm_head");
    ops::linear(hidden, output_, nullptr, logits);
  }
  if (options.layout == BatchLayout::padded && !options.last_token_logits) {
    StageTimer timer(options.profile, "pad");
    logits.reshape({num_seqs, act.max_seqlen, c.vocab_size});
    return std::move(NestedTensor::from_padded(logits, lengths).values());
  }
  return logits;
}

void LlamaModel::run_layers(Activations& act, const ForwardOptions& options) const {
  const LlamaConfig& c = config_;
  const int64_t q_dim = int64_t{c.num_heads} * c.head_dim;
  const int64_t kv_dim = int64_t{c.num_kv_heads} * c.head_dim;
  const ops::AttentionConfig attention{c.num_heads, c.num_kv_heads, c.head_dim, 0.0f, /*causal=*/true};
  MatrixView qkv = act.qkv.matrix();
  MatrixView q = qkv.columns(0, q_dim);
  MatrixView k = qkv.columns(q_dim, q_dim + kv_dim);
  MatrixView v = qkv.columns(q_dim + kv_dim, q_dim + 2 * kv_dim);
  MatrixView qk = qkv.columns(0, q_dim + kv_dim);  // Q and K heads side by side: RoPE rotates both
  StageProfile* profile = options.profile;

  for (const Layer& layer : layers_) {
    {
      StageTimer timer(profile, "attn_norm");
      ops::rmsnorm(act.x, *layer.attn_norm, c.norm_eps, act.scratch);
    }
    {
      StageTimer timer(profile, "qkv_proj");
      ops::linear(act.scratch, layer.wqkv, layer.bqkv.defined() ? &layer.bqkv : nullptr, act.qkv);
    }
    {
      StageTimer timer(profile, "rope");
      ops::rope_apply(qk, c.num_heads + c.num_kv_heads, c.head_dim, act.rotations, c.rope_pairs);
    }
    {
      StageTimer timer(profile, "attention");
      act.attention(q, k, v, act.attn.matrix(), attention);
    }
    {
      StageTimer timer(profile, "attn_output");
      ops::linear(act.attn, layer.wo, nullptr, act.scratch);
      ops::add(act.x, act.scratch);
    }
    {
      StageTimer timer(profile, "mlp_norm");
      ops::rmsnorm(act.x, *layer.ffn_norm, c.norm_eps, act.scratch);
    }
    {
      StageTimer timer(profile, "mlp");
      ops::linear(act.scratch, layer.w_gate_up, nullptr, act.gate_up);
      ops::swiglu(act.gate_up, act.mlp);
      ops::linear(act.mlp, layer.w_down, nullptr, act.scratch);
      ops::add(act.x, act.scratch);
    }
  }
}


// ---- Generation over a paged KV cache -------------------------------------------------------------------------

namespace {

// The first `rows` rows of a workspace tensor, as a tensor (no copy, no allocation from the accounting allocator).
Tensor first_rows(Tensor& tensor, int64_t rows) {
  Shape shape = tensor.shape();
  shape[0] = rows;
  return Tensor::borrow(nullptr, tensor.raw_data(), std::move(shape), tensor.dtype());
}

}  // namespace

int64_t LlamaWorkspace::bytes() const {
  int64_t total = 0;
  for (const Tensor* t : {&positions_, &rotations_, &x_, &scratch_, &qkv_, &attn_, &gate_up_, &mlp_, &hidden_, &logits_, &attention_}) {
    total += static_cast<int64_t>(t->nbytes());
  }
  return total;
}

LlamaWorkspace LlamaModel::make_workspace(int64_t max_tokens, int64_t max_logit_rows) const {
  const LlamaConfig& c = config_;
  if (max_tokens <= 0 || max_logit_rows <= 0) {
    throw InvalidArgument(concat("llama workspace: max_tokens (", max_tokens, ") and max_logit_rows (", max_logit_rows,
                                 ") must be positive"));
  }
  LlamaWorkspace ws;
  ws.max_tokens_ = max_tokens;
  ws.max_logit_rows_ = max_logit_rows;
  ws.threads_ = omp_get_max_threads();
  ws.positions_ = Tensor({max_tokens}, DType::i32);
  ws.rotations_ = Tensor({max_tokens, 2 * int64_t{c.head_dim}});
  ws.x_ = Tensor({max_tokens, c.model_dim});
  ws.scratch_ = Tensor({max_tokens, c.model_dim});
  ws.qkv_ = Tensor({max_tokens, int64_t{c.num_heads + 2 * c.num_kv_heads} * c.head_dim});
  ws.attn_ = Tensor({max_tokens, int64_t{c.num_heads} * c.head_dim});
  ws.gate_up_ = Tensor({max_tokens, 2 * c.ffn_dim});
  ws.mlp_ = Tensor({max_tokens, c.ffn_dim});
  ws.hidden_ = Tensor({max_logit_rows, c.model_dim});
  ws.logits_ = Tensor({max_logit_rows, c.vocab_size});
  const ops::AttentionConfig attention{c.num_heads, c.num_kv_heads, c.head_dim, 0.0f, /*causal=*/true};
  ws.attention_ = Tensor({ops::paged_attention_workspace_bytes(attention, ws.threads_)}, DType::u8);
  return ws;
}

ConstMatrixView LlamaModel::forward(const TokenBatch& batch, std::span<const PagedKvLayer> cache,
                                    LlamaWorkspace& ws, StageProfile* profile) const {
  const LlamaConfig& c = config_;
  const int64_t rows = static_cast<int64_t>(batch.token_ids.size());
  const int64_t logit_rows = static_cast<int64_t>(batch.logit_rows.size());
  if (rows > ws.max_tokens_ || logit_rows > ws.max_logit_rows_) {
    throw InvalidArgument(concat("llama forward: ", rows, " tokens and ", logit_rows, " logit rows exceed the workspace (",
                                 ws.max_tokens_, ", ", ws.max_logit_rows_, ")"));
  }
  if (ws.threads_ != omp_get_max_threads()) {
    throw InvalidArgument(concat("llama forward: the workspace was made for ", ws.threads_, " threads, now ",
                                 omp_get_max_threads(), ": make a new one"));
  }
  if (static_cast<int64_t>(cache.size()) != c.num_layers) {
    throw InvalidArgument(concat("llama forward: ", cache.size(), " cache layers for ", c.num_layers, " layers"));
  }
  if (batch.kv.cu_seqlens.empty() || batch.kv.cu_seqlens.back() != rows) {
    throw InvalidArgument(concat("llama forward: cu_seqlens must end at the ", rows, " tokens"));
  }
  for (int64_t i = 0; i < rows; ++i) {
    if (batch.token_ids[i] < 0 || batch.token_ids[i] >= c.vocab_size) {
      throw InvalidArgument(concat("llama forward: token ", i, " is id ", batch.token_ids[i], ", outside [0, ",
                                   c.vocab_size, ")"));
    }
  }
  for (const int32_t row : batch.logit_rows) {
    if (row < 0 || row >= rows) throw InvalidArgument(concat("llama forward: logit row ", row, " outside [0, ", rows, ")"));
  }
  // Positions: each sequence continues where its cache ends; the context length bounds them.
  int32_t* positions = ws.positions_.data<int32_t>();
  for (size_t seq = 0; seq + 1 < batch.kv.cu_seqlens.size(); ++seq) {
    const int32_t begin = batch.kv.cu_seqlens[seq];
    const int32_t end = batch.kv.cu_seqlens[seq + 1];
    if (end < begin || (seq < batch.kv.context_lengths.size() &&
                        int64_t{batch.kv.context_lengths[seq]} + (end - begin) > c.context_length)) {
      throw InvalidArgument(concat("llama forward: sequence ", seq, " would pass the context length ", c.context_length));
    }
    for (int32_t row = begin; row < end; ++row) {
      positions[row] = (seq < batch.kv.context_lengths.size() ? batch.kv.context_lengths[seq] : 0) + (row - begin);
    }
  }

  const Tensor token_ids = Tensor::borrow(nullptr, batch.token_ids.data(), {rows}, DType::i32);
  const Tensor positions_view = first_rows(ws.positions_, rows);
  {
    StageTimer timer(profile, "rope");  // once for every layer
    ops::rope_rotations(positions_view, inv_freq_, c.head_dim, c.rope_pairs, ws.rotations_);
  }
  const Tensor& rotations = ws.rotations_;
  Tensor x = first_rows(ws.x_, rows);
  Tensor scratch = first_rows(ws.scratch_, rows);
  Tensor qkv = first_rows(ws.qkv_, rows);
  Tensor attn = first_rows(ws.attn_, rows);
  Tensor gate_up = first_rows(ws.gate_up_, rows);
  Tensor mlp = first_rows(ws.mlp_, rows);
  {
    StageTimer timer(profile, "embedding");
    ops::embedding(token_ids, embedding_table(), x);
  }
  const int64_t q_dim = int64_t{c.num_heads} * c.head_dim;
  const int64_t kv_dim = int64_t{c.num_kv_heads} * c.head_dim;
  const ops::AttentionConfig attention{c.num_heads, c.num_kv_heads, c.head_dim, 0.0f, /*causal=*/true};
  MatrixView q = qkv.matrix().columns(0, q_dim);
  MatrixView k = qkv.matrix().columns(q_dim, q_dim + kv_dim);
  MatrixView v = qkv.matrix().columns(q_dim + kv_dim, q_dim + 2 * kv_dim);
  MatrixView qk = qkv.matrix().columns(0, q_dim + kv_dim);  // Q and K heads side by side: RoPE rotates both
  const std::span<std::byte> attention_scratch(static_cast<std::byte*>(ws.attention_.raw_data()), ws.attention_.nbytes());
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& layer = layers_[i];
    {
      StageTimer timer(profile, "attn_norm");
      ops::rmsnorm(x, *layer.attn_norm, c.norm_eps, scratch);
    }
    {
      StageTimer timer(profile, "qkv_proj");
      ops::linear(scratch, layer.wqkv, layer.bqkv.defined() ? &layer.bqkv : nullptr, qkv);
    }
    {
      StageTimer timer(profile, "rope");
      ops::rope_apply(qk, c.num_heads + c.num_kv_heads, c.head_dim, rotations, c.rope_pairs);
    }
    {
      StageTimer timer(profile, "attention");
      ops::paged_kv_write(k, v, batch.kv, cache[i], attention);
      ops::paged_attention(q, attn.matrix(), batch.kv, cache[i], attention, attention_scratch);
    }
    {
      StageTimer timer(profile, "attn_output");
      ops::linear(attn, layer.wo, nullptr, scratch);
      ops::add(x, scratch);
    }
    {
      StageTimer timer(profile, "mlp_norm");
      ops::rmsnorm(x, *layer.ffn_norm, c.norm_eps, scratch);
    }
    {
      StageTimer timer(profile, "mlp");
      ops::linear(scratch, layer.w_gate_up, nullptr, gate_up);
      ops::swiglu(gate_up, mlp);
      ops::linear(mlp, layer.w_down, nullptr, scratch);
      ops::add(x, scratch);
    }
  }

  Tensor hidden = first_rows(ws.hidden_, logit_rows);
  Tensor logits = first_rows(ws.logits_, logit_rows);
  {
    StageTimer timer(profile, "final_norm");
    for (int64_t i = 0; i < logit_rows; ++i) {
      std::memcpy(hidden.data<float>() + i * c.model_dim, x.data<float>() + int64_t{batch.logit_rows[i]} * c.model_dim,
                  c.model_dim * sizeof(float));
    }
    ops::rmsnorm(hidden, *output_norm_, c.norm_eps, hidden);
  }
  {
    StageTimer timer(profile, "lm_head");
    ops::linear(hidden, output_, nullptr, logits);
  }
  return ws.logits_.matrix().row_range(0, logit_rows);
}

}  // namespace jagged
