// Model files as a whole: what architecture a file holds, and exporting a model for other engines.
#pragma once

#include <filesystem>
#include <string>

#include "jagged/bert.h"
#include "jagged/llama.h"

namespace jagged {

// "llama" or "bert", read from the file (llama2.c checkpoints are "llama"). FileError for unknown ones.
std::string model_architecture(const std::filesystem::path& path);

// Writes the model as a Hugging Face directory: config.json (LlamaForCausalLM) + model.safetensors (f32),
// q/k rows in Hugging Face's rotate-half layout whatever layout the model was loaded with.
void export_huggingface(const LlamaModel& model, const std::filesystem::path& directory);

// Writes the encoder as a Hugging Face directory: config.json (BertForSequenceClassification with the model's
// labels when it has a classification head, else BertModel) + model.safetensors (f32, "bert."-prefixed names;
// the pooler when present). load_bert_model reads it back to the same model. InvalidArgument for an encoder that
// Hugging Face's BERT cannot express (pre-norm blocks).
void export_huggingface(const BertModel& model, const std::filesystem::path& directory);

}  // namespace jagged
