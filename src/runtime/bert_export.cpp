// Exporting a BERT-family encoder as a Hugging Face directory, so other engines (PyTorch, and ONNX Runtime through
// PyTorch's ONNX export, in bench/) run exactly jagged's weights. The names are the inverse of the loader's
// (src/io/hf_config.cpp, hf_bert_tensor_name).
#include <charconv>
#include <fstream>

#include <nlohmann/json.hpp>

#include "io/safetensors_writer.h"
#include "jagged/model_files.h"

namespace jagged {
namespace {

// Canonical (GGUF) name -> Hugging Face BertForSequenceClassification name.
std::string huggingface_bert_name(const std::string& name) {
  static const std::vector<std::pair<std::string, std::string>> stems{
      {"token_embd", "bert.embeddings.word_embeddings"},
      {"position_embd", "bert.embeddings.position_embeddings"},
      {"token_types", "bert.embeddings.token_type_embeddings"},
      {"token_embd_norm", "bert.embeddings.LayerNorm"},
      {"cls.pooler", "bert.pooler.dense"},
      {"cls", "classifier"}};
  static const std::vector<std::pair<std::string, std::string>> layer_stems{
      {"attn_q", "attention.self.query"},
      {"attn_k", "attention.self.key"},
      {"attn_v", "attention.self.value"},
      {"attn_output", "attention.output.dense"},
      {"attn_output_norm", "attention.output.LayerNorm"},
      {"ffn_up", "intermediate.dense"},
      {"ffn_down", "output.dense"},
      {"layer_output_norm", "output.LayerNorm"}};
  const size_t suffix_begin = name.rfind('.');
  const std::string stem = name.substr(0, suffix_begin);
  const std::string suffix = suffix_begin == std::string::npos ? "" : name.substr(suffix_begin);
  for (const auto& [canonical, hf] : stems) {
    if (stem == canonical) return hf + suffix;
  }
  if (stem.rfind("blk.", 0) == 0) {
    const size_t layer_end = stem.find('.', 4);
    const std::string layer = stem.substr(4, layer_end - 4);
    const std::string kind = layer_end == std::string::npos ? "" : stem.substr(layer_end + 1);
    for (const auto& [canonical, hf] : layer_stems) {
      if (kind == canonical) return "bert.encoder.layer." + layer + "." + hf + suffix;
    }
  }
  throw InvalidArgument(concat("export: no Hugging Face BERT name for tensor ", name));
}

// The float as its shortest decimal (1e-12, not 9.999999960041972e-13), so config.json reads as people write it.
double shortest_decimal(float value) {
  char text[32];
  const auto result = std::to_chars(text, text + sizeof(text), value);
  double parsed = 0.0;
  std::from_chars(text, result.ptr, parsed);
  return parsed;
}

}  // namespace

void export_huggingface(const BertModel& model, const std::filesystem::path& directory) {
  const BertConfig& c = model.config();
  if (c.pre_norm) {
    throw InvalidArgument("export: a pre-norm encoder has no Hugging Face BERT form (BERT is post-LayerNorm)");
  }
  const WeightMap weights = model.canonical_weights();
  std::vector<std::pair<std::string, const Tensor*>> named;
  for (const auto& [name, tensor] : weights) named.emplace_back(huggingface_bert_name(name), &tensor);
  std::error_code error;
  std::filesystem::create_directories(directory, error);
  if (error) throw FileError(concat(directory.string(), ": cannot create the export folder (", error.message(), ")"));
  io::write_safetensors(directory / "model.safetensors", named);

  const bool classifier = c.num_labels > 0;
  nlohmann::ordered_json config{
      {"architectures", {classifier ? "BertForSequenceClassification" : "BertModel"}},
      {"model_type", "bert"},
      {"hidden_size", c.model_dim},
      {"intermediate_size", c.ffn_dim},
      {"num_hidden_layers", c.num_layers},
      {"num_attention_heads", c.num_heads},
      {"vocab_size", c.vocab_size},
      {"max_position_embeddings", c.context_length},
      {"type_vocab_size", c.type_vocab_size},
      {"layer_norm_eps", shortest_decimal(c.norm_eps)},
      {"hidden_act", c.gelu == ops::GeluForm::erf ? "gelu" : "gelu_new"},
      {"position_embedding_type", "absolute"},
      {"pad_token_id", 0},
      {"torch_dtype", "float32"}};
  if (classifier) {
    nlohmann::ordered_json id2label = nlohmann::ordered_json::object();
    nlohmann::ordered_json label2id = nlohmann::ordered_json::object();
    for (int64_t id = 0; id < c.num_labels; ++id) {
      const std::string label = c.labels.empty() ? concat("LABEL_", id) : c.labels[static_cast<size_t>(id)];
      id2label[std::to_string(id)] = label;
      label2id[label] = id;
    }
    config["id2label"] = id2label;
    config["label2id"] = label2id;
  }
  std::ofstream out(directory / "config.json");
  out << config.dump(2) << "\n";
  if (!out) throw FileError(concat((directory / "config.json").string(), ": could not write"));
}

}  // namespace jagged
