// Model loading: picks the format (llama.c checkpoint, Hugging Face directory, GGUF), validates the whole file
// (config ranges, every tensor's presence, shape and dtype) before reading data, and returns the neutral form of
// include/jagged/model_config.h: a config plus a WeightMap of f32 tensors under canonical names in PyTorch order.
// f32 data is borrowed from the memory mapping when aligned; f16/bf16 are converted. Models never see files.
// Every error is a FileError naming the file and the problem.
#pragma once

#include <filesystem>
#include <string>

#include "jagged/model_config.h"

namespace jagged::io {

enum class ModelFormat { llama2c, huggingface, gguf };

// A directory holding config.json: huggingface; a file starting with "GGUF": gguf; any other file: llama2c.
ModelFormat detect_format(const std::filesystem::path& path);
// "llama" (Llama, Mistral, Qwen2, llama2.c) or "bert". FileError naming an unknown architecture.
std::string detect_architecture(const std::filesystem::path& path);

struct LoadedLlama {
  LlamaConfig config;
  WeightMap weights;
};
LoadedLlama load_llama(const std::filesystem::path& path);

struct LoadedBert {
  BertConfig config;
  WeightMap weights;
};
LoadedBert load_bert(const std::filesystem::path& path);

}  // namespace jagged::io
