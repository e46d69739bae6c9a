#include "io/hf_config.h"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <vector>
#include <nlohmann/json.hpp>

#include "io/weights.h"
#include "jagged/error.h"

namespace jagged::io {
namespace {

using nlohmann::json;

json parse_object(std::string_view text, const std::string& source) {
  json config = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded()) throw FileError(concat(source, ": config.json is not valid JSON"));
  if (!config.is_object()) throw FileError(concat(source, ": config.json is not a JSON object"));
  return config;
}

// The value of `key`, or nullptr when absent or null (HF writes null for unset options).
const json* field(const json& config, const char* key) {
  const auto found = config.find(key);
  return found == config.end() || found->is_null() ? nullptr : &*found;
}

int64_t get_int(const json& config, const char* key, std::optional<int64_t> fallback, int64_t low, int64_t high,
                const std::string& source) {
  const json* value = field(config, key);
  if (value == nullptr) {
    if (!fallback) throw FileError(concat(source, ": config.json lacks \"", key, "\""));
    return *fallback;
  }
  int64_t result = 0;
  if (value->is_number_integer()) {
    if (value->is_number_unsigned() && value->get<uint64_t>() > static_cast<uint64_t>(high)) {
      throw FileError(concat(source, ": config.json \"", key, "\" ", value->dump(),
                             " is outside the supported range [", low, ", ", high, "]"));
    }
    result = value->get<int64_t>();
  } else if (value->is_number_float() && std::floor(value->get<double>()) == value->get<double>() &&
             std::fabs(value->get<double>()) < 9.0e15) {
    result = static_cast<int64_t>(value->get<double>());
  } else {
    throw FileError(concat(source, ": config.json \"", key, "\" is ", value->dump(), ", expected an integer"));
  }
  return checked_range(result, low, high, concat("config.json \"", key, "\""), source);
}

double get_number(const json& config, const char* key, double fallback, const std::string& source) {
  const json* value = field(config, key);
  if (value == nullptr) return fallback;
  if (!value->is_number()) {
    throw FileError(concat(source, ": config.json \"", key, "\" is ", value->dump(), ", expected a number"));
  }
  return value->get<double>();
}

bool get_bool(const json& config, const char* key, bool fallback, const std::string& source) {
  const json* value = field(config, key);
  if (value == nullptr) return fallback;
  if (!value->is_boolean()) {
    throw FileError(concat(source, ": config.json \"", key, "\" is ", value->dump(), ", expected true or false"));
  }
  return value->get<bool>();
}

std::string get_string(const json& config, const char* key, const std::string& fallback, const std::string& source) {
  const json* value = field(config, key);
  if (value == nullptr) return fallback;
  if (!value->is_string()) {
    throw FileError(concat(source, ": config.json \"", key, "\" is ", value->dump(), ", expected a string"));
  }
  return value->get<std::string>();
}

// bos/eos ids: an integer, or a list whose first entry is used (Llama 3 lists several EOS ids).
int32_t get_token_id(const json& config, const char* key, int32_t fallback, const std::string& source) {
  const json* value = field(config, key);
  if (value == nullptr) return fallback;
  if (value->is_array()) {
    if (value->empty()) return fallback;
    const json first = json{{key, (*value)[0]}};
    return static_cast<int32_t>(get_int(first, key, fallback, -1, std::numeric_limits<int32_t>::max(), source));
  }
  return static_cast<int32_t>(get_int(config, key, fallback, -1, std::numeric_limits<int32_t>::max(), source));
}

// Families by config.json "model_type" and "architectures" entries.
const char* family_of_model_type(const std::string& model_type) {
  if (model_type == "llama" || model_type == "mistral" || model_type == "qwen2") return "llama";
  if (model_type == "bert") return "bert";
  return nullptr;
}

const char* family_of_architecture(const std::string& architecture) {
  if (architecture == "LlamaForCausalLM" || architecture == "MistralForCausalLM" ||
      architecture == "Qwen2ForCausalLM") {
    return "llama";
  }
  if (architecture == "BertModel" || architecture == "BertForSequenceClassification" ||
      architecture == "BertForMaskedLM") {
    return "bert";
  }
  return nullptr;
}

std::string family(const json& config, const std::string& source) {
  const std::string model_type = get_string(config, "model_type", "", source);
  const char* from_type = model_type.empty() ? nullptr : family_of_model_type(model_type);
  if (!model_type.empty() && from_type == nullptr) {
    throw FileError(concat(source, ": unsupported model_type \"", model_type,
                           "\" (supported: llama, mistral, qwen2, bert)"));
  }
  const char* from_architecture = nullptr;
  if (const json* architectures = field(config, "architectures")) {
    if (!architectures->is_array()) throw FileError(concat(source, ": config.json \"architectures\" is not a list"));
    for (const json& entry : *architectures) {
      const std::string name = entry.is_string() ? entry.get<std::string>() : entry.dump();
      const char* this_family = family_of_architecture(name);
      if (this_family == nullptr) {
        throw FileError(concat(source, ": unsupported architecture ", name,
                               " (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, BertModel, "
                               "BertForSequenceClassification, BertForMaskedLM)"));
      }
      from_architecture = this_family;
    }
  }
  if (from_type == nullptr && from_architecture == nullptr) {
    throw FileError(concat(source, ": config.json names neither \"model_type\" nor \"architectures\""));
  }
  if (from_type != nullptr && from_architecture != nullptr && std::string(from_type) != from_architecture) {
    throw FileError(concat(source, ": model_type \"", model_type, "\" contradicts \"architectures\""));
  }
  return from_type != nullptr ? from_type : from_architecture;
}

bool is_qwen2(const json& config, const std::string& source) {
  if (get_string(config, "model_type", "", source) == "qwen2") return true;
  if (const json* architectures = field(config, "architectures")) {
    for (const json& entry : *architectures) {
      if (entry == "Qwen2ForCausalLM") return true;
    }
  }
  return false;
}

// "model.layers.12.mlp.up_proj.weight" with prefix "model.layers." -> layer 12, rest "mlp.up_proj.weight".
bool split_layer(const std::string& name, std::string_view prefix, int& layer, std::string& rest) {
  if (name.compare(0, prefix.size(), prefix) != 0) return false;
  size_t position = prefix.size();
  int64_t value = 0;
  const size_t digits_begin = position;
  while (position < name.size() && name[position] >= '0' && name[position] <= '9' && position - digits_begin < 6) {
    value = value * 10 + (name[position] - '0');
    ++position;
  }
  if (position == digits_begin || position >= name.size() || name[position] != '.') return false;
  layer = static_cast<int>(value);
  rest = name.substr(position + 1);
  return true;
}

bool ends_with(const std::string& text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::string hf_architecture(std::string_view config_json, const std::string& source) {
  return family(parse_object(config_json, source), source);
}

LlamaConfig parse_hf_llama_config(std::string_view config_json, const std::string& source) {
  const json config = parse_object(config_json, source);
  if (family(config, source) != "llama") throw FileError(concat(source, ": not a Llama-family model"));
  LlamaConfig result;
  result.model_dim = get_int(config, "hidden_size", std::nullopt, 1, int64_t{1} << 17, source);
  result.ffn_dim = get_int(config, "intermediate_size", std::nullopt, 1, int64_t{1} << 20, source);
  result.num_layers = static_cast<int>(get_int(config, "num_hidden_layers", std::nullopt, 1, 1024, source));
  result.num_heads = static_cast<int>(get_int(config, "num_attention_heads", std::nullopt, 1, 1024, source));
  result.num_kv_heads =
      static_cast<int>(get_int(config, "num_key_value_heads", result.num_heads, 1, result.num_heads, source));
  if (field(config, "head_dim") == nullptr && result.model_dim % result.num_heads != 0) {
    throw FileError(concat(source, ": num_attention_heads ", result.num_heads, " does not divide hidden_size ",
                           result.model_dim, " and there is no head_dim"));
  }
  result.head_dim = static_cast<int>(get_int(config, "head_dim", result.model_dim / result.num_heads, 2, 1024, source));
  result.vocab_size = get_int(config, "vocab_size", std::nullopt, 1, int64_t{1} << 24, source);
  result.context_length = get_int(config, "max_position_embeddings", 2048, 1, int64_t{1} << 24, source);
  result.rope_theta = static_cast<float>(get_number(config, "rope_theta", 10000.0, source));
  result.norm_eps = static_cast<float>(get_number(config, "rms_norm_eps", 1e-6, source));
  result.tied_output = get_bool(config, "tie_word_embeddings", false, source);
  result.rope_pairs = ops::RopePairs::halves;
  result.qkv_bias = is_qwen2(config, source);
  result.bos_id = get_token_id(config, "bos_token_id", 1, source);
  result.eos_id = get_token_id(config, "eos_token_id", 2, source);

  const std::string activation = get_string(config, "hidden_act", "silu", source);
  if (activation != "silu") throw FileError(concat(source, ": hidden_act \"", activation, "\" is not supported (silu)"));
  if (!result.qkv_bias && get_bool(config, "attention_bias", false, source)) {
    throw FileError(concat(source, ": attention_bias=true is not supported for this architecture"));
  }
  if (get_bool(config, "mlp_bias", false, source)) throw FileError(concat(source, ": mlp_bias=true is not supported"));

  if (const json* scaling = field(config, "rope_scaling")) {
    if (!scaling->is_object()) throw FileError(concat(source, ": rope_scaling is not an object"));
    std::string type = get_string(*scaling, "rope_type", "", source);
    if (type.empty()) type = get_string(*scaling, "type", "", source);
    if (type == "llama3") {
      result.rope_scaling.factor = static_cast<float>(get_number(*scaling, "factor", 0.0, source));
      result.rope_scaling.low_freq_factor = static_cast<float>(get_number(*scaling, "low_freq_factor", 1.0, source));
      result.rope_scaling.high_freq_factor = static_cast<float>(get_number(*scaling, "high_freq_factor", 4.0, source));
      result.rope_scaling.original_context =
          get_int(*scaling, "original_max_position_embeddings", 8192, 1, int64_t{1} << 24, source);
      if (!(result.rope_scaling.factor >= 1.0f)) {
        throw FileError(concat(source, ": rope_scaling factor ", result.rope_scaling.factor, " must be >= 1"));
      }
    } else if (type != "default") {
      throw FileError(concat(source, ": rope_scaling type \"", type, "\" is not supported (llama3 only)"));
    }
  }
  validate_config(result, source);
  return result;
}

BertConfig parse_hf_bert_config(std::string_view config_json, const std::string& source) {
  const json config = parse_object(config_json, source);
  if (family(config, source) != "bert") throw FileError(concat(source, ": not a BERT model"));
  BertConfig result;
  result.model_dim = get_int(config, "hidden_size", std::nullopt, 1, int64_t{1} << 17, source);
  result.ffn_dim = get_int(config, "intermediate_size", std::nullopt, 1, int64_t{1} << 20, source);
  result.num_layers = static_cast<int>(get_int(config, "num_hidden_layers", std::nullopt, 1, 1024, source));
  result.num_heads = static_cast<int>(get_int(config, "num_attention_heads", std::nullopt, 1, 1024, source));
  result.vocab_size = get_int(config, "vocab_size", std::nullopt, 1, int64_t{1} << 24, source);
  result.context_length = get_int(config, "max_position_embeddings", 512, 1, int64_t{1} << 24, source);
  result.type_vocab_size = get_int(config, "type_vocab_size", 2, 1, 1 << 16, source);
  result.norm_eps = static_cast<float>(get_number(config, "layer_norm_eps", 1e-12, source));
  result.pre_norm = false;

  const std::string activation = get_string(config, "hidden_act", "gelu", source);
  if (activation == "gelu") {
    result.gelu = ops::GeluForm::erf;
  } else if (activation == "gelu_new" || activation == "gelu_pytorch_tanh" || activation == "gelu_fast") {
    result.gelu = ops::GeluForm::tanh;
  } else {
    throw FileError(concat(source, ": hidden_act \"", activation,
                           "\" is not supported (gelu, gelu_new, gelu_pytorch_tanh, gelu_fast)"));
  }
  const std::string position_type = get_string(config, "position_embedding_type", "absolute", source);
  if (position_type != "absolute") {
    throw FileError(concat(source, ": position_embedding_type \"", position_type, "\" is not supported (absolute)"));
  }
  if (const json* labels = field(config, "id2label")) {
    if (!labels->is_object()) throw FileError(concat(source, ": id2label is not an object"));
    checked_range(static_cast<int64_t>(labels->size()), 0, 1 << 20, "id2label size", source);
    result.num_labels = static_cast<int64_t>(labels->size());
    result.labels.resize(labels->size());
    std::vector<bool> seen(labels->size(), false);
    for (const auto& [key, label] : labels->items()) {
      // Keys are the ids "0".."n-1" as strings.
      char* end = nullptr;
      const long id = std::strtol(key.c_str(), &end, 10);
      if (key.empty() || *end != '\0' || id < 0 || id >= result.num_labels || seen[static_cast<size_t>(id)]) {
        throw FileError(concat(source, ": id2label key \"", key, "\" is not one of the ids 0..", result.num_labels - 1));
      }
      seen[static_cast<size_t>(id)] = true;
      result.labels[static_cast<size_t>(id)] = label.is_string() ? label.get<std::string>() : label.dump();
    }
  } else {
    result.num_labels = get_int(config, "num_labels", 2, 0, 1 << 20, source);
  }
  validate_config(result, source);
  return result;
}

std::optional<std::string> hf_llama_tensor_name(const std::string& hf_name) {
  if (hf_name == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf_name == "model.norm.weight") return "output_norm.weight";
  if (hf_name == "lm_head.weight") return "output.weight";
  int layer = 0;
  std::string rest;
  if (!split_layer(hf_name, "model.layers.", layer, rest)) return std::nullopt;
  if (ends_with(rest, "rotary_emb.inv_freq")) return "";  // a buffer older exports saved; recomputed from config
  static const std::pair<const char*, const char*> kLayerNames[] = {
      {"self_attn.q_proj.weight", "attn_q.weight"}, {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"}, {"self_attn.q_proj.bias", "attn_q.bias"},
      {"self_attn.k_proj.bias", "attn_k.bias"},     {"self_attn.v_proj.bias", "attn_v.bias"},
      {"self_attn.o_proj.weight", "attn_output.weight"}, {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},      {"mlp.down_proj.weight", "ffn_down.weight"},
      {"input_layernorm.weight", "attn_norm.weight"}, {"post_attention_layernorm.weight", "ffn_norm.weight"}};
  for (const auto& [hf, canonical] : kLayerNames) {
    if (rest == hf) return concat("blk.", layer, ".", canonical);
  }
  return std::nullopt;
}

std::optional<std::string> hf_bert_tensor_name(const std::string& hf_name) {
  std::string name = hf_name.compare(0, 5, "bert.") == 0 ? hf_name.substr(5) : hf_name;
  // Old TensorFlow-era checkpoints name LayerNorm parameters gamma/beta.
  if (ends_with(name, "LayerNorm.gamma")) name.replace(name.size() - 5, 5, "weight");
  if (ends_with(name, "LayerNorm.beta")) name.replace(name.size() - 4, 4, "bias");
  std::string suffix;  // ".weight" or ".bias"
  if (ends_with(name, ".weight")) {
    suffix = ".weight";
  } else if (ends_with(name, ".bias")) {
    suffix = ".bias";
  }
  const std::string stem = name.substr(0, name.size() - suffix.size());
  if (name == "embeddings.position_ids" || name.compare(0, 16, "cls.predictions.") == 0 ||
      name.compare(0, 21, "cls.seq_relationship.") == 0) {
    return "";  // a buffer, or masked-LM / next-sentence heads the encoder does not use
  }
  if (suffix.empty()) return std::nullopt;
  if (stem == "embeddings.word_embeddings" && suffix == ".weight") return "token_embd.weight";
  if (stem == "embeddings.position_embeddings" && suffix == ".weight") return "position_embd.weight";
  if (stem == "embeddings.token_type_embeddings" && suffix == ".weight") return "token_types.weight";
  if (stem == "embeddings.LayerNorm") return concat("token_embd_norm", suffix);
  if (stem == "pooler.dense") return concat("cls.pooler", suffix);
  if (stem == "classifier") return concat("cls", suffix);
  int layer = 0;
  std::string rest;
  if (!split_layer(stem, "encoder.layer.", layer, rest)) return std::nullopt;
  static const std::pair<const char*, const char*> kLayerNames[] = {
      {"attention.self.query", "attn_q"},          {"attention.self.key", "attn_k"},
      {"attention.self.value", "attn_v"},          {"attention.output.dense", "attn_output"},
      {"attention.output.LayerNorm", "attn_output_norm"}, {"intermediate.dense", "ffn_up"},
      {"output.dense", "ffn_down"},                {"output.LayerNorm", "layer_output_norm"}};
  for (const auto& [hf, canonical] : kLayerNames) {
    if (rest == hf) return concat("blk.", layer, ".", canonical, suffix);
  }
  return std::nullopt;
}

}  // namespace jagged::io
