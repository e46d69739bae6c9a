// Hugging Face model directories: config.json -> LlamaConfig / BertConfig, and the mapping from Hugging Face
// tensor names to the canonical (GGUF-style) names of include/jagged/model_config.h.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "jagged/model_config.h"

namespace jagged::io {

// "llama" (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM) or "bert" (BertModel,
// BertForSequenceClassification, BertForMaskedLM), from `architectures` and `model_type`. FileError naming
// `source` and the unknown architecture otherwise, or when the text is not a JSON object.
std::string hf_architecture(std::string_view config_json, const std::string& source);

// The config as the loaders use it. Tensor-dependent fields are the loader's to finish: tied_output is set from
// tie_word_embeddings here and forced on when lm_head.weight is absent; num_labels comes from id2label /
// num_labels (default 2) and is zeroed when the classifier is absent. rope_pairs is halves (HF q/k layout).
LlamaConfig parse_hf_llama_config(std::string_view config_json, const std::string& source);
BertConfig parse_hf_bert_config(std::string_view config_json, const std::string& source);

// Canonical name of a Hugging Face tensor: a name, "" for tensors that are known and unused (rotary inv_freq
// buffers, position_ids, masked-LM heads), nullopt for names this model family does not have.
std::optional<std::string> hf_llama_tensor_name(const std::string& hf_name);
std::optional<std::string> hf_bert_tensor_name(const std::string& hf_name);

}  // namespace jagged::io
