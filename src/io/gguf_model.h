// GGUF model files -> the neutral model form. Architectures: llama (q/k stored permuted for adjacent-pair RoPE),
// qwen2 (halves RoPE, q/k/v biases), bert. Canonical names are GGUF's own; shapes come out in PyTorch order.
#pragma once

#include <memory>
#include <string>

#include "io/gguf.h"
#include "io/model_loader.h"

namespace jagged::io {

// "llama" (general.architecture llama or qwen2) or "bert"; FileError naming any other architecture.
std::string gguf_family(const GgufFile& gguf);

LoadedLlama load_llama_gguf(std::shared_ptr<const GgufFile> gguf);
LoadedBert load_bert_gguf(std::shared_ptr<const GgufFile> gguf);

}  // namespace jagged::io
