// Model files as a whole: what architecture a file holds, and exporting a model for other engines.
#pragma once

#include <filesystem>
#include <string>

#include "jagged/bert.h"
#include "jagged/llama.h"
#include "jagged/tokenizer.h"

namespace jagged {

// "llama" or "bert", read from the file (llama2.c checkpoints are "llama"). FileError for unknown ones.
std::string model_architecture(const std::filesystem::path& path);

// Writes the model as a Hugging Face directory: config.json (LlamaForCausalLM) + model.safetensors (f32),
// q/k rows in Hugging Face's rotate-half layout whatever layout the model was loaded with.
void export_huggingface(const LlamaModel& model, const std::filesystem::path& directory);

// Writes the model as one GGUF file that llama.cpp runs: llama.cpp's converter's keys and tensor names
// (architecture "llama", or "qwen2" for models with q/k/v biases; q/k rows in the RoPE layout of that
// architecture; Llama 3 RoPE scaling as rope_freqs.weight), f32 tensors, and a SentencePiece vocabulary
// (tokenizer.ggml.model "llama"): `tokenizer`'s (padded with unused pieces to the model's vocab_size), or when it is
// null a synthetic one of vocab_size pieces (<unk>, the config's BOS and EOS, 256 byte pieces, "t<id>"), since
// llama.cpp loads no model without a vocabulary. load_llama_model reads the file back to the same model.
// InvalidArgument for a tokenizer that is not SentencePiece or is larger than the model's vocabulary; FileError
// when the file cannot be written.
void export_gguf(const LlamaModel& model, const Tokenizer* tokenizer, const std::filesystem::path& path);

// Writes the encoder as a Hugging Face directory: config.json (BertForSequenceClassification with the model's
// labels when it has a classification head, else BertModel) + model.safetensors (f32, "bert."-prefixed names;
// the pooler when present). load_bert_model reads it back to the same model. InvalidArgument for an encoder that
// Hugging Face's BERT cannot express (pre-norm blocks).
void export_huggingface(const BertModel& model, const std::filesystem::path& directory);

}  // namespace jagged
