// llama2.c checkpoints (the legacy format run.c reads): seven little-endian int32 (dim, hidden_dim, n_layers,
// n_heads, n_kv_heads, vocab_size, seq_len; negative vocab_size = untied classifier), then f32 arrays:
// token embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, two legacy RoPE tables (skipped),
// and the classifier when untied. RoPE rotates adjacent pairs; BOS 1, EOS 2.
#pragma once

#include <filesystem>
#include <memory>

#include "io/mapped_file.h"
#include "io/model_loader.h"

namespace jagged::io {

inline constexpr int kLlama2cHeaderBytes = 7 * 4;

// FileError naming the file when the header is out of range or the size differs from what it implies.
LoadedLlama load_llama2c(const std::filesystem::path& path);
LoadedLlama load_llama2c(std::shared_ptr<const MappedFile> file);

}  // namespace jagged::io
