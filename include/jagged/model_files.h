// Model files as a whole: what architecture a file holds, and exporting a model for other engines.
#pragma once

#include <filesystem>
#include <string>

#include "jagged/llama.h"

namespace jagged {

// "llama" or "bert", read from the file (llama2.c checkpoints are "llama"). FileError for unknown ones.
std::string model_architecture(const std::filesystem::path& path);

// Writes the model as a Hugging Face directory: config.json (LlamaForCausalLM) + model.safetensors (f32),
// q/k rows in Hugging Face's rotate-half layout whatever layout the model was loaded with.
void export_huggingface(const LlamaModel& model, const std::filesystem::path& directory);

}  // namespace jagged
