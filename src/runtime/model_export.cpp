#include <fstream>

#include <nlohmann/json.hpp>

#include "io/safetensors_writer.h"
#include "runtime/rotated_rows.h"
#include "jagged/model_files.h"

namespace jagged {
namespace {

// Canonical (GGUF) name -> Hugging Face Llama name.
std::string huggingface_name(const std::string& name) {
  static const std::vector<std::pair<std::string, std::string>> layer_names{
      {"attn_q", "self_attn.q_proj"},       {"attn_k", "self_attn.k_proj"},    {"attn_v", "self_attn.v_proj"},
      {"attn_output", "self_attn.o_proj"},  {"ffn_gate", "mlp.gate_proj"},     {"ffn_up", "mlp.up_proj"},
      {"ffn_down", "mlp.down_proj"},        {"attn_norm", "input_layernorm"},  {"ffn_norm", "post_attention_layernorm"}};
  if (name == "token_embd.weight") return "model.embed_tokens.weight";
  if (name == "output_norm.weight") return "model.norm.weight";
  if (name == "output.weight") return "lm_head.weight";
  const size_t layer_end = name.find('.', 4);
  const std::string layer = name.substr(4, layer_end - 4);
  const size_t kind_end = name.rfind('.');
  const std::string kind = name.substr(layer_end + 1, kind_end - layer_end - 1);
  for (const auto& [canonical, hf] : layer_names) {
    if (kind == canonical) return "model.layers." + layer + "." + hf + name.substr(kind_end);
  }
  throw InvalidArgument(concat("export: no Hugging Face name for tensor ", name));
}

}  // namespace

void export_huggingface(const LlamaModel& model, const std::filesystem::path& directory) {
  const LlamaConfig& c = model.config();
  std::filesystem::create_directories(directory);
  WeightMap weights = model.canonical_weights();
  if (c.rope_pairs == ops::RopePairs::adjacent) {
    for (auto& [name, tensor] : weights) {
      if (name.find(".attn_q.") != std::string::npos) tensor = permute_rotated_rows(tensor, c.num_heads, c.head_dim, /*to_halves=*/true);
      if (name.find(".attn_k.") != std::string::npos) tensor = permute_rotated_rows(tensor, c.num_kv_heads, c.head_dim, /*to_halves=*/true);
    }
  }
  std::vector<std::pair<std::string, const Tensor*>> named;
  for (const auto& [name, tensor] : weights) named.emplace_back(huggingface_name(name), &tensor);
  io::write_safetensors(directory / "model.safetensors", named);

  nlohmann::ordered_json config{
      {"architectures", {c.qkv_bias ? "Qwen2ForCausalLM" : "LlamaForCausalLM"}},
      {"model_type", c.qkv_bias ? "qwen2" : "llama"},
      {"hidden_size", c.model_dim},
      {"intermediate_size", c.ffn_dim},
      {"num_hidden_layers", c.num_layers},
      {"num_attention_heads", c.num_heads},
      {"num_key_value_heads", c.num_kv_heads},
      {"head_dim", c.head_dim},
      {"vocab_size", c.vocab_size},
      {"max_position_embeddings", c.context_length},
      {"rope_theta", c.rope_theta},
      {"rms_norm_eps", c.norm_eps},
      {"tie_word_embeddings", c.tied_output},
      {"bos_token_id", c.bos_id},
      {"eos_token_id", c.eos_id},
      {"torch_dtype", "float32"}};
  if (c.rope_scaling.factor > 0) {
    config["rope_scaling"] = {{"rope_type", "llama3"},
                              {"factor", c.rope_scaling.factor},
                              {"low_freq_factor", c.rope_scaling.low_freq_factor},
                              {"high_freq_factor", c.rope_scaling.high_freq_factor},
                              {"original_max_position_embeddings", c.rope_scaling.original_context}};
  }
  std::ofstream out(directory / "config.json");
  out << config.dump(2) << "\n";
  if (!out) throw FileError(concat((directory / "config.json").string(), ": could not write"));
}

}  // namespace jagged
