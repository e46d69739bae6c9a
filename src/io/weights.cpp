#include "io/weights.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <optional>
#include <string_view>

#include "core/finite.h"
#include "core/quant_blocks.h"
#include "jagged/error.h"

namespace jagged::io {
namespace {

// Bounds that no real model reaches; they keep every size product far from int64 overflow.
constexpr int64_t kMaxModelDim = int64_t{1} << 17;
constexpr int64_t kMaxFfnDim = int64_t{1} << 20;
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxHeads = 1024;
constexpr int64_t kMaxHeadDim = 1024;
constexpr int64_t kMaxVocab = int64_t{1} << 24;
constexpr int64_t kMaxContext = int64_t{1} << 24;

void check_positive_finite(float value, const char* what, const std::string& source) {
  if (!(value > 0.0f) || !std::isfinite(value)) throw FileError(concat(source, ": ", what, " ", value, " must be positive"));
}

// FileError naming the tensor and the first NaN or infinite value: such weights turn every logit into NaN, and
// greedy decoding into token 0 forever. An exponent of all ones is NaN or Inf; the bit test vectorises.
void check_finite_weights(const Tensor& tensor, const std::string& name, const std::string& origin,
                          const std::string& source) {
  if (const std::optional<QuantType> type = quant_type_of(tensor.dtype())) {
    const int64_t blocks = static_cast<int64_t>(tensor.nbytes()) / quant_layout(*type).bytes;
    const int64_t bad = first_non_finite_block(*type, static_cast<const uint8_t*>(tensor.raw_data()), blocks);
    if (bad < 0) return;
    throw FileError(concat(source, ": ", name, " (", origin, ") holds a non-finite scale in ",
                           quant_layout(*type).name, " block ", bad, ": the model file is corrupt"));
  }
  if (is_half_dtype(tensor.dtype())) {  // kept in the file's type until packing
    const bool f16 = tensor.dtype() == DType::f16;
    const uint16_t exponent = f16 ? 0x7c00 : 0x7f80;  // all ones: infinity or NaN
    const auto* halves = static_cast<const std::byte*>(tensor.raw_data());
    for (int64_t i = 0; i < tensor.numel(); ++i) {
      uint16_t bits;
      std::memcpy(&bits, halves + 2 * i, sizeof(bits));
      if ((bits & exponent) != exponent) continue;
      throw FileError(concat(source, ": ", name, " (", origin, ") holds a non-finite weight (",
                             f16 ? f16_to_f32(bits) : bf16_to_f32(bits), " at flat index ", i,
                             "): the model file is corrupt"));
    }
    return;
  }
  const float* values = tensor.data<float>();
  const int64_t index = core::first_non_finite({values, static_cast<size_t>(tensor.numel())});
  if (index < 0) return;
  throw FileError(concat(source, ": ", name, " (", origin, ") holds a non-finite weight (", values[index],
                         " at flat index ", index, "): the model file is corrupt"));
}

std::string layer_name(int layer, const char* suffix) { return concat("blk.", layer, ".", suffix); }

}  // namespace

int64_t checked_range(int64_t value, int64_t low, int64_t high, const std::string& what, const std::string& source) {
  if (value < low || value > high) {
    throw FileError(concat(source, ": ", what, " ", value, " is outside the supported range [", low, ", ", high, "]"));
  }
  return value;
}

void validate_config(const LlamaConfig& config, const std::string& source) {
  checked_range(config.model_dim, 1, kMaxModelDim, "model_dim", source);
  checked_range(config.ffn_dim, 1, kMaxFfnDim, "ffn_dim", source);
  checked_range(config.num_layers, 1, kMaxLayers, "num_layers", source);
  checked_range(config.num_heads, 1, kMaxHeads, "num_heads", source);
  checked_range(config.num_kv_heads, 1, config.num_heads, "num_kv_heads", source);
  checked_range(config.head_dim, 2, kMaxHeadDim, "head_dim", source);
  checked_range(config.vocab_size, 1, kMaxVocab, "vocab_size", source);
  checked_range(config.context_length, 1, kMaxContext, "context_length", source);
  if (config.num_heads % config.num_kv_heads != 0) {
    throw FileError(concat(source, ": num_kv_heads ", config.num_kv_heads, " does not divide num_heads ", config.num_heads));
  }
  if (config.head_dim % 2 != 0) throw FileError(concat(source, ": head_dim ", config.head_dim, " is odd (RoPE needs pairs)"));
  check_positive_finite(config.rope_theta, "rope_theta", source);
  check_positive_finite(config.norm_eps, "norm_eps", source);
  const ops::RopeScaling& scaling = config.rope_scaling;
  if (scaling.factor != 0.0f) {
    if (!(scaling.factor >= 1.0f) || !std::isfinite(scaling.factor)) {
      throw FileError(concat(source, ": rope scaling factor ", scaling.factor, " must be >= 1"));
    }
    check_positive_finite(scaling.low_freq_factor, "rope low_freq_factor", source);
    check_positive_finite(scaling.high_freq_factor, "rope high_freq_factor", source);
    if (!(scaling.high_freq_factor > scaling.low_freq_factor)) {
      throw FileError(concat(source, ": rope high_freq_factor ", scaling.high_freq_factor,
                             " must exceed low_freq_factor ", scaling.low_freq_factor));
    }
    checked_range(scaling.original_context, 1, kMaxContext, "rope original context length", source);
  }
  checked_range(config.bos_id, -1, config.vocab_size - 1, "bos_id", source);
  checked_range(config.eos_id, -1, config.vocab_size - 1, "eos_id", source);
}

void validate_config(const BertConfig& config, const std::string& source) {
  checked_range(config.model_dim, 1, kMaxModelDim, "model_dim", source);
  checked_range(config.ffn_dim, 1, kMaxFfnDim, "ffn_dim", source);
  checked_range(config.num_layers, 1, kMaxLayers, "num_layers", source);
  checked_range(config.num_heads, 1, kMaxHeads, "num_heads", source);
  checked_range(config.vocab_size, 1, kMaxVocab, "vocab_size", source);
  checked_range(config.context_length, 1, kMaxContext, "context_length", source);
  checked_range(config.type_vocab_size, 1, 1 << 16, "type_vocab_size", source);
  checked_range(config.num_labels, 0, 1 << 20, "num_labels", source);
  if (config.model_dim % config.num_heads != 0) {
    throw FileError(concat(source, ": num_heads ", config.num_heads, " does not divide model_dim ", config.model_dim));
  }
  check_positive_finite(config.norm_eps, "norm_eps", source);
}

std::vector<ExpectedTensor> expected_llama_tensors(const LlamaConfig& config) {
  const int64_t dim = config.model_dim;
  const int64_t q_dim = int64_t{config.num_heads} * config.head_dim;
  const int64_t kv_dim = int64_t{config.num_kv_heads} * config.head_dim;
  std::vector<ExpectedTensor> tensors = {{"token_embd.weight", {config.vocab_size, dim}},
                                         {"output_norm.weight", {dim}}};
  if (!config.tied_output) tensors.push_back({"output.weight", {config.vocab_size, dim}});
  for (int layer = 0; layer < config.num_layers; ++layer) {
    tensors.push_back({layer_name(layer, "attn_norm.weight"), {dim}});
    tensors.push_back({layer_name(layer, "attn_q.weight"), {q_dim, dim}});
    tensors.push_back({layer_name(layer, "attn_k.weight"), {kv_dim, dim}});
    tensors.push_back({layer_name(layer, "attn_v.weight"), {kv_dim, dim}});
    if (config.qkv_bias) {
      tensors.push_back({layer_name(layer, "attn_q.bias"), {q_dim}});
      tensors.push_back({layer_name(layer, "attn_k.bias"), {kv_dim}});
      tensors.push_back({layer_name(layer, "attn_v.bias"), {kv_dim}});
    }
    tensors.push_back({layer_name(layer, "attn_output.weight"), {dim, q_dim}});
    tensors.push_back({layer_name(layer, "ffn_norm.weight"), {dim}});
    tensors.push_back({layer_name(layer, "ffn_gate.weight"), {config.ffn_dim, dim}});
    tensors.push_back({layer_name(layer, "ffn_up.weight"), {config.ffn_dim, dim}});
    tensors.push_back({layer_name(layer, "ffn_down.weight"), {dim, config.ffn_dim}});
  }
  return tensors;
}

std::vector<ExpectedTensor> expected_bert_tensors(const BertConfig& config, bool with_pooler) {
  const int64_t dim = config.model_dim;
  const int64_t ffn = config.ffn_dim;
  std::vector<ExpectedTensor> tensors = {
      {"token_embd.weight", {config.vocab_size, dim}},     {"position_embd.weight", {config.context_length, dim}},
      {"token_types.weight", {config.type_vocab_size, dim}}, {"token_embd_norm.weight", {dim}},
      {"token_embd_norm.bias", {dim}}};
  for (int layer = 0; layer < config.num_layers; ++layer) {
    for (const char* projection : {"attn_q", "attn_k", "attn_v", "attn_output"}) {
      tensors.push_back({layer_name(layer, concat(projection, ".weight").c_str()), {dim, dim}});
      tensors.push_back({layer_name(layer, concat(projection, ".bias").c_str()), {dim}});
    }
    tensors.push_back({layer_name(layer, "attn_output_norm.weight"), {dim}});
    tensors.push_back({layer_name(layer, "attn_output_norm.bias"), {dim}});
    tensors.push_back({layer_name(layer, "ffn_up.weight"), {ffn, dim}});
    tensors.push_back({layer_name(layer, "ffn_up.bias"), {ffn}});
    tensors.push_back({layer_name(layer, "ffn_down.weight"), {dim, ffn}});
    tensors.push_back({layer_name(layer, "ffn_down.bias"), {dim}});
    tensors.push_back({layer_name(layer, "layer_output_norm.weight"), {dim}});
    tensors.push_back({layer_name(layer, "layer_output_norm.bias"), {dim}});
  }
  if (with_pooler) {
    tensors.push_back({"cls.pooler.weight", {dim, dim}});
    tensors.push_back({"cls.pooler.bias", {dim}});
  }
  if (config.num_labels > 0) {
    tensors.push_back({"cls.weight", {config.num_labels, dim}});
    tensors.push_back({"cls.bias", {config.num_labels}});
  }
  return tensors;
}

bool is_llama_linear_weight(const std::string& name) {
  if (name == "output.weight" || name == "token_embd.weight") return true;  // the model widens the lookup table
  for (const char* suffix : {".attn_q.weight", ".attn_k.weight", ".attn_v.weight", ".attn_output.weight",
                             ".ffn_gate.weight", ".ffn_up.weight", ".ffn_down.weight"}) {
    const std::string_view tail(suffix);
    if (name.size() > tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0) return true;
  }
  return false;
}

WeightMap read_weights(const SourceMap& sources, const std::vector<ExpectedTensor>& expected,
                       const std::string& source) {
  // Everything is checked before the first byte of tensor data is touched.
  std::set<std::string_view> expected_names;
  for (const ExpectedTensor& tensor : expected) expected_names.insert(tensor.name);
  for (const auto& [name, tensor] : sources) {
    if (expected_names.count(name) == 0) {
      throw FileError(concat(source, ": unexpected tensor ", name, " (", tensor.origin,
                             "): the config implies no such tensor (a layer beyond num_layers, or an unsupported "
                             "bias or head?)"));
    }
  }
  for (const ExpectedTensor& tensor : expected) {
    const auto found = sources.find(tensor.name);
    if (found == sources.end()) throw FileError(concat(source, ": missing tensor ", tensor.name));
    if (found->second.shape != tensor.shape) {
      throw FileError(concat(source, ": ", tensor.name, " (", found->second.origin, "): expected ",
                             shape_string(tensor.shape), " from config, got ", shape_string(found->second.shape)));
    }
    found->second.check_readable();
  }
  WeightMap weights;
  for (const ExpectedTensor& tensor : expected) {
    const SourceTensor& found = sources.at(tensor.name);
    Tensor values = found.read();
    check_finite_weights(values, tensor.name, found.origin, source);
    // The check read the tensor's pages; until the model packs it (and reads it again), they need not stay: with
    // every page of the file resident before packing begins, the load would peak at file plus packed copy.
    values.release_file_pages();
    weights.emplace(tensor.name, std::move(values));
  }
  return weights;
}

}  // namespace jagged::io
