// A Llama-family model as a GGUF file that llama.cpp runs: the keys and tensor names of llama.cpp's own converter,
// f32 tensors, and a SentencePiece vocabulary (the model's own, or a synthetic one: llama.cpp will not load a
// model without a vocabulary).
#include <algorithm>
#include <cstdio>

#include "io/gguf_writer.h"
#include "io/tokenizer_vocab.h"
#include "runtime/rotated_rows.h"
#include "jagged/model_files.h"
#include "jagged/ops.h"

namespace jagged {
namespace {

// The vocabulary written into the file: the tokenizer's (padded with unused pieces up to the model's vocab_size),
// or a synthetic one: <unk>, the config's BOS and EOS, the 256 byte pieces, U+2581 (space), then "t<id>" pieces.
io::SentencePieceVocab vocabulary_for(const LlamaConfig& config, const Tokenizer* tokenizer) {
  const auto vocab_size = static_cast<size_t>(config.vocab_size);
  io::SentencePieceVocab out;
  if (tokenizer != nullptr) {
    std::optional<io::SentencePieceVocab> own = io::sentencepiece_vocab(*tokenizer);
    if (!own) {
      throw InvalidArgument(concat("GGUF export writes SentencePiece vocabularies only; this tokenizer is ",
                                   tokenizer->kind(), " (export without a tokenizer for a synthetic vocabulary)"));
    }
    if (own->vocab.pieces.size() > vocab_size) {
      throw InvalidArgument(concat("GGUF export: the tokenizer has ", own->vocab.pieces.size(),
                                   " pieces, more than the model's vocab_size ", vocab_size));
    }
    out = std::move(*own);
    for (size_t id = out.vocab.pieces.size(); id < vocab_size; ++id) {
      out.vocab.pieces.push_back(concat("<unused", id, ">"));
      out.vocab.kinds.push_back(io::TokenKind::unused);
      out.scores.push_back(0.0f);
    }
    return out;
  }
  if (vocab_size < 3) throw InvalidArgument(concat("GGUF export: vocab_size ", vocab_size, " is below 3"));
  out.vocab.bos = config.bos_id;
  out.vocab.eos = config.eos_id;
  out.vocab.unk = config.bos_id != 0 && config.eos_id != 0 ? 0 : -1;
  out.vocab.add_bos = true;
  constexpr size_t kFirstByte = 3;
  for (size_t id = 0; id < vocab_size; ++id) {
    std::string piece = concat("t", id);
    io::TokenKind kind = io::TokenKind::normal;
    float score = -static_cast<float>(id);
    if (static_cast<int32_t>(id) == config.bos_id) {
      piece = "<s>", kind = io::TokenKind::control, score = 0.0f;
    } else if (static_cast<int32_t>(id) == config.eos_id) {
      piece = "</s>", kind = io::TokenKind::control, score = 0.0f;
    } else if (static_cast<int32_t>(id) == out.vocab.unk) {
      piece = "<unk>", kind = io::TokenKind::unknown, score = 0.0f;
    } else if (id == kFirstByte + 256) {
      piece = "\xE2\x96\x81", score = 0.0f;  // SentencePiece's space, so encoded text starts with a word piece
    } else if (id >= kFirstByte && id < kFirstByte + 256) {
      char byte_piece[8];
      std::snprintf(byte_piece, sizeof(byte_piece), "<0x%02X>", static_cast<unsigned>(id - kFirstByte));
      piece = byte_piece, kind = io::TokenKind::byte, score = 0.0f;
    }
    out.vocab.pieces.push_back(std::move(piece));
    out.vocab.kinds.push_back(kind);
    out.scores.push_back(score);
  }
  return out;
}

void write_vocabulary(io::GgufWriter& writer, const io::SentencePieceVocab& vocab) {
  writer.kv_string("tokenizer.ggml.model", "llama");
  writer.kv_strings("tokenizer.ggml.tokens", vocab.vocab.pieces);
  writer.kv_f32s("tokenizer.ggml.scores", vocab.scores);
  std::vector<int32_t> types;
  for (const io::TokenKind kind : vocab.vocab.kinds) types.push_back(static_cast<int32_t>(kind));
  writer.kv_i32s("tokenizer.ggml.token_type", types);
  if (vocab.vocab.bos >= 0) writer.kv_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(vocab.vocab.bos));
  if (vocab.vocab.eos >= 0) writer.kv_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(vocab.vocab.eos));
  if (vocab.vocab.unk >= 0) writer.kv_u32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(vocab.vocab.unk));
  writer.kv_bool("tokenizer.ggml.add_bos_token", vocab.vocab.add_bos);
  writer.kv_bool("tokenizer.ggml.add_eos_token", vocab.vocab.add_eos);
  writer.kv_bool("tokenizer.ggml.add_space_prefix", vocab.add_space_prefix);
}

}  // namespace

void export_gguf(const LlamaModel& model, const Tokenizer* tokenizer, const std::filesystem::path& path) {
  const LlamaConfig& c = model.config();
  const io::SentencePieceVocab vocab = vocabulary_for(c, tokenizer);
  // llama.cpp's "llama" rotates adjacent pairs; its "qwen2" (the family with q/k/v biases) rotates halves.
  const std::string arch = c.qkv_bias ? "qwen2" : "llama";
  const ops::RopePairs file_pairs = c.qkv_bias ? ops::RopePairs::halves : ops::RopePairs::adjacent;

  io::GgufWriter writer;
  writer.kv_string("general.architecture", arch);
  writer.kv_string("general.name", "jagged export");
  writer.kv_u32("general.file_type", 0);  // LLAMA_FTYPE_ALL_F32
  writer.kv_u32(arch + ".vocab_size", static_cast<uint32_t>(c.vocab_size));
  writer.kv_u32(arch + ".context_length", static_cast<uint32_t>(c.context_length));
  writer.kv_u32(arch + ".embedding_length", static_cast<uint32_t>(c.model_dim));
  writer.kv_u32(arch + ".feed_forward_length", static_cast<uint32_t>(c.ffn_dim));
  writer.kv_u32(arch + ".block_count", static_cast<uint32_t>(c.num_layers));
  writer.kv_u32(arch + ".attention.head_count", static_cast<uint32_t>(c.num_heads));
  writer.kv_u32(arch + ".attention.head_count_kv", static_cast<uint32_t>(c.num_kv_heads));
  writer.kv_u32(arch + ".rope.dimension_count", static_cast<uint32_t>(c.head_dim));
  if (int64_t{c.num_heads} * c.head_dim != c.model_dim) {
    writer.kv_u32(arch + ".attention.key_length", static_cast<uint32_t>(c.head_dim));
    writer.kv_u32(arch + ".attention.value_length", static_cast<uint32_t>(c.head_dim));
  }
  writer.kv_f32(arch + ".attention.layer_norm_rms_epsilon", c.norm_eps);
  writer.kv_f32(arch + ".rope.freq_base", c.rope_theta);
  if (c.rope_scaling.factor > 0) {
    // llama.cpp's converter stores Llama 3 scaling as a divisor per frequency, beside the original context.
    writer.kv_u32(arch + ".rope.scaling.original_context_length", static_cast<uint32_t>(c.rope_scaling.original_context));
    const std::vector<float> plain = ops::rope_inv_freq(c.head_dim, c.rope_theta);
    const std::vector<float> scaled = ops::rope_inv_freq(c.head_dim, c.rope_theta, c.rope_scaling);
    Tensor divisors({static_cast<int64_t>(plain.size())});
    for (size_t i = 0; i < plain.size(); ++i) divisors.data<float>()[i] = plain[i] / scaled[i];
    writer.tensor_f32("rope_freqs.weight", std::move(divisors));
  }
  write_vocabulary(writer, vocab);

  WeightMap weights = model.canonical_weights();
  for (auto& [name, tensor] : weights) {
    if (c.rope_pairs != file_pairs) {
      const bool to_halves = file_pairs == ops::RopePairs::halves;
      if (name.find(".attn_q.") != std::string::npos) {
        tensor = permute_rotated_rows(tensor, c.num_heads, c.head_dim, to_halves);
      } else if (name.find(".attn_k.") != std::string::npos) {
        tensor = permute_rotated_rows(tensor, c.num_kv_heads, c.head_dim, to_halves);
      }
    }
    writer.tensor_f32(name, std::move(tensor));
  }
  writer.write(path);
}

}  // namespace jagged
