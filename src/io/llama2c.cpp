#include "io/llama2c.h"

#include <cstring>
#include <limits>

#include "io/weights.h"
#include "jagged/error.h"

namespace jagged::io {
namespace {

// export.py's versioned formats (v1/v2) start with this magic; run.c only reads the legacy layout.
constexpr uint32_t kVersionedMagic = 0x616b3432;  // "ak42"

}  // namespace

LoadedLlama load_llama2c(const std::filesystem::path& path) { return load_llama2c(MappedFile::open(path)); }

LoadedLlama load_llama2c(std::shared_ptr<const MappedFile> file) {
  const std::string name = file->path().string();
  if (file->size() < kLlama2cHeaderBytes) {
    throw FileError(concat(name, ": truncated: ", file->size(), " bytes, too short for the 28-byte llama2.c header"));
  }
  int32_t header[7];
  std::memcpy(header, file->bytes().data(), sizeof(header));
  if (static_cast<uint32_t>(header[0]) == kVersionedMagic) {
    throw FileError(concat(name, ": llama2.c versioned export (magic \"ak42\") is not supported; export with "
                                 "--version 0 (the legacy format run.c reads)"));
  }
  const int64_t raw_vocab = header[5];
  LlamaConfig config;
  config.model_dim = header[0];
  config.ffn_dim = header[1];
  config.num_layers = header[2];
  config.num_heads = header[3];
  config.num_kv_heads = header[4];
  config.vocab_size = raw_vocab < 0 ? -raw_vocab : raw_vocab;
  config.context_length = header[6];
  config.tied_output = raw_vocab > 0;
  config.rope_pairs = ops::RopePairs::adjacent;
  config.rope_theta = 10000.0f;
  config.norm_eps = 1e-5f;
  config.bos_id = 1;
  config.eos_id = 2;
  const std::string source = concat(name, " (llama2.c header: dim ", header[0], ", hidden_dim ", header[1],
                                    ", n_layers ", header[2], ", n_heads ", header[3], ", n_kv_heads ", header[4],
                                    ", vocab_size ", header[5], ", seq_len ", header[6], ")");
  checked_range(config.num_heads, 1, 1024, "n_heads", source);
  checked_range(config.model_dim, 1, int64_t{1} << 17, "dim", source);
  if (config.model_dim % config.num_heads != 0) {
    throw FileError(concat(source, ": n_heads ", config.num_heads, " does not divide dim ", config.model_dim));
  }
  config.head_dim = static_cast<int>(config.model_dim / config.num_heads);
  validate_config(config, source);

  // Byte layout; the ranges validated above keep every product far below 2^63.
  const int64_t dim = config.model_dim;
  const int64_t layers = config.num_layers;
  const int64_t kv_dim = int64_t{config.num_kv_heads} * config.head_dim;
  const int64_t hidden = config.ffn_dim;
  const int64_t vocab = config.vocab_size;
  const int64_t floats = vocab * dim + layers * (2 * dim + 2 * dim * dim + 2 * kv_dim * dim + 3 * hidden * dim) + dim +
                         config.context_length * config.head_dim + (config.tied_output ? 0 : vocab * dim);
  const uint64_t expected_size = kLlama2cHeaderBytes + static_cast<uint64_t>(floats) * sizeof(float);
  if (file->size() < expected_size) {
    throw FileError(concat(source, ": truncated: the header implies ", expected_size, " bytes, the file has ",
                           file->size()));
  }
  if (file->size() > expected_size) {
    throw FileError(concat(source, ": trailing bytes: the header implies ", expected_size, " bytes, the file has ",
                           file->size()));
  }

  uint64_t offset = kLlama2cHeaderBytes;
  SourceMap sources;
  const auto add = [&](const std::string& canonical, const std::string& origin, const Shape& shape) {
    const uint64_t at = offset;
    sources[canonical] = SourceTensor{concat(origin, " at byte ", at, " of ", name), shape, [] {},
                                      [file, at, shape] { return f32_tensor_from_file(file, at, shape, DType::f32); }};
    offset += static_cast<uint64_t>(shape_numel(shape)) * sizeof(float);
  };
  // One [layers, ...] array of the checkpoint: a tensor per layer.
  const auto add_layers = [&](const char* suffix, const char* array, const Shape& shape) {
    for (int64_t layer = 0; layer < layers; ++layer) {
      add(concat("blk.", layer, ".", suffix), concat(array, "[", layer, "]"), shape);
    }
  };
  add("token_embd.weight", "token_embedding_table", {vocab, dim});
  add_layers("attn_norm.weight", "rms_att_weight", {dim});
  add_layers("attn_q.weight", "wq", {dim, dim});
  add_layers("attn_k.weight", "wk", {kv_dim, dim});
  add_layers("attn_v.weight", "wv", {kv_dim, dim});
  add_layers("attn_output.weight", "wo", {dim, dim});
  add_layers("ffn_norm.weight", "rms_ffn_weight", {dim});
  add_layers("ffn_gate.weight", "w1", {hidden, dim});
  add_layers("ffn_down.weight", "w2", {dim, hidden});
  add_layers("ffn_up.weight", "w3", {hidden, dim});
  add("output_norm.weight", "rms_final_weight", {dim});
  offset += static_cast<uint64_t>(config.context_length) * config.head_dim * sizeof(float);  // legacy RoPE tables
  if (!config.tied_output) add("output.weight", "wcls", {vocab, dim});
  if (offset != expected_size) throw FileError(concat(source, ": internal layout error"));  // keeps the two in step
  LoadedLlama loaded;
  loaded.weights = read_weights(sources, expected_llama_tensors(config), name);
  loaded.config = config;
  return loaded;
}

}  // namespace jagged::io
