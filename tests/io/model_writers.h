// Writers of tiny model files for the loader tests: GGUF, safetensors (+ config.json) and llama2.c, built from a
// canonical WeightMap, so one set of weights can be written in every format and the loads compared. They are
// independent of the readers (own byte layout code; GGUF's is the library's writer, src/io/gguf_writer.h, which
// jagged also uses to export models), and expose knobs to corrupt what they write.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "io/gguf_writer.h"
#include "io/weights.h"
#include "jagged/dtype.h"
#include "jagged/model_config.h"
#include "testing/files.h"
#include "testing/ragged.h"

namespace jagged::testing {

using Bytes = std::vector<std::byte>;

template <typename T>
void append_pod(Bytes& out, const T& value) {
  const auto* bytes = reinterpret_cast<const std::byte*>(&value);
  out.insert(out.end(), bytes, bytes + sizeof(T));
}

inline void append_text(Bytes& out, std::string_view text) {
  const auto* bytes = reinterpret_cast<const std::byte*>(text.data());
  out.insert(out.end(), bytes, bytes + text.size());
}

inline void write_file(const std::filesystem::path& path, const Bytes& bytes) {
  std::ofstream stream(path, std::ios::binary | std::ios::trunc);
  stream.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(stream.good()) << path;
}

// A fresh, empty directory under the build tree for one test.
inline std::filesystem::path scratch_dir(const std::string& name) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::filesystem::path dir = std::filesystem::path(JAGGED_BINARY_DIR) / "io_test_scratch" /
                                    concat(info->test_suite_name(), ".", info->name()) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// Storage encodings of f32 values.
enum class Storage { f32, f16, bf16 };

inline Bytes encode(const float* values, int64_t count, Storage storage) {
  Bytes out;
  for (int64_t i = 0; i < count; ++i) {
    if (storage == Storage::f32) {
      append_pod(out, values[i]);
    } else {
      append_pod(out, storage == Storage::f16 ? f32_to_f16(values[i]) : f32_to_bf16(values[i]));
    }
  }
  return out;
}
inline Bytes encode(const Tensor& tensor, Storage storage) { return encode(tensor.data<float>(), tensor.numel(), storage); }

// ---------------------------------------------------------------------------------------------------------------
// GGUF

enum GgufType : uint32_t { kU8 = 0, kI8, kU16, kI16, kU32, kI32, kF32, kBool, kString, kArray, kU64, kI64, kF64 };

// The library's writer, plus the shorthands the loader tests use: any POD value under any type tag (to write
// mismatched ones), and a Tensor in any storage encoding.
class GgufWriter : public io::GgufWriter {
 public:
  using io::GgufWriter::tensor;

  template <typename T>
  void kv(const std::string& key, uint32_t type, T value) {
    Bytes payload;
    append_pod(payload, value);
    kv_raw(key, type, payload);
  }
  void tensor(const std::string& name, const Tensor& value, Storage storage = Storage::f32) {
    const uint32_t type = storage == Storage::f32 ? io::kGgmlF32 : storage == Storage::f16 ? io::kGgmlF16 : io::kGgmlBF16;
    tensor(name, value.shape(), type, encode(value, storage));
  }
};

// ---------------------------------------------------------------------------------------------------------------
// safetensors

inline Bytes safetensors_raw(const std::string& header, const Bytes& data) {
  Bytes out;
  append_pod(out, uint64_t{header.size()});
  append_text(out, header);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

class SafetensorsWriter {
 public:
  size_t header_padding = 8;  // pad the JSON with spaces to this multiple (1: none, for misaligned data)

  void tensor(const std::string& name, const std::string& dtype, const Shape& shape, Bytes data) {
    entries_.push_back({name, dtype, shape, std::move(data)});
  }
  void tensor(const std::string& name, const Tensor& value, Storage storage = Storage::f32) {
    tensor(name, storage == Storage::f32 ? "F32" : storage == Storage::f16 ? "F16" : "BF16", value.shape(),
           encode(value, storage));
  }
  nlohmann::json header() const {
    nlohmann::json header = nlohmann::json::object();
    header["__metadata__"] = {{"format", "pt"}};
    uint64_t at = 0;
    for (const auto& entry : entries_) {
      header[entry.name] = {{"dtype", entry.dtype}, {"shape", entry.shape}, {"data_offsets", {at, at + entry.data.size()}}};
      at += entry.data.size();
    }
    return header;
  }
  Bytes data() const {
    Bytes out;
    for (const auto& entry : entries_) out.insert(out.end(), entry.data.begin(), entry.data.end());
    return out;
  }
  Bytes bytes() const { return bytes_with_header(header().dump()); }
  Bytes bytes_with_header(std::string text) const {
    while ((8 + text.size()) % header_padding != 0) text += ' ';
    return safetensors_raw(text, data());
  }

 private:
  struct Entry {
    std::string name;
    std::string dtype;
    Shape shape;
    Bytes data;
  };
  std::vector<Entry> entries_;
};

// ---------------------------------------------------------------------------------------------------------------
// One set of Llama weights in every format.

inline LlamaConfig tiny_llama_config() {
  LlamaConfig config;
  config.model_dim = 16;
  config.ffn_dim = 24;
  config.num_layers = 2;
  config.num_heads = 4;
  config.num_kv_heads = 2;
  config.head_dim = 4;
  config.vocab_size = 32;
  config.context_length = 64;
  config.tied_output = false;
  return config;
}

// Deterministic random canonical weights for `config` (q/k in adjacent-pair layout, as llama2.c and GGUF store).
inline WeightMap random_llama_weights(const LlamaConfig& config, uint64_t seed = 1) {
  WeightMap weights;
  for (const auto& expected : io::expected_llama_tensors(config)) {
    weights.emplace(expected.name, random_tensor(expected.shape, seed++));
  }
  return weights;
}

// q and k projections (and their biases): the tensors whose rows Hugging Face stores in halves layout.
inline bool is_rotated(const std::string& canonical) {
  return canonical.find(".attn_q.") != std::string::npos || canonical.find(".attn_k.") != std::string::npos;
}

// Rows of a q/k projection between adjacent pairs (x0,x1),(x2,x3).. and halves (x_i, x_{i+d/2}) layout; to halves
// is the inverse of llama.cpp's convert permute. halves row h*d + j*d/2 + i = adjacent row h*d + 2i + j.
inline Tensor permute_rotated_rows(const Tensor& weight, int64_t head_dim, bool to_halves) {
  const int64_t rows = weight.dim(0);
  const int64_t cols = weight.rank() == 2 ? weight.dim(1) : 1;
  Tensor out(weight.shape());
  for (int64_t head = 0; head < rows / head_dim; ++head) {
    for (int64_t i = 0; i < head_dim / 2; ++i) {
      for (int64_t j = 0; j < 2; ++j) {
        const int64_t halves_row = head * head_dim + j * head_dim / 2 + i;
        const int64_t adjacent_row = head * head_dim + 2 * i + j;
        std::memcpy(out.data<float>() + (to_halves ? halves_row : adjacent_row) * cols,
                    weight.data<float>() + (to_halves ? adjacent_row : halves_row) * cols, cols * sizeof(float));
      }
    }
  }
  return out;
}
inline Tensor adjacent_to_halves(const Tensor& weight, int64_t head_dim) {
  return permute_rotated_rows(weight, head_dim, true);
}
inline Tensor halves_to_adjacent(const Tensor& weight, int64_t head_dim) {
  return permute_rotated_rows(weight, head_dim, false);
}

// Largest |difference| between two weight maps holding the same names and shapes (a missing name or a shape
// mismatch fails the test and gives infinity); with head_dim > 0, q/k of `actual` (a Hugging Face load) are first
// permuted from halves to the adjacent layout of `expected`.
inline double weight_map_diff(const WeightMap& actual, const WeightMap& expected, int head_dim = 0) {
  EXPECT_EQ(actual.size(), expected.size());
  double worst = 0.0;
  for (const auto& [name, want] : expected) {
    if (actual.count(name) == 0) {
      ADD_FAILURE() << "missing " << name;
      return INFINITY;
    }
    const Tensor& got = actual.at(name);
    if (got.shape() != want.shape()) {
      ADD_FAILURE() << name << ": " << shape_string(got.shape()) << " vs " << shape_string(want.shape());
      return INFINITY;
    }
    // Linear weights come in the file's type (f16/bf16 kept until packing): compare their values.
    const Tensor values = got.to_f32();
    const Tensor converted = head_dim > 0 && is_rotated(name) ? halves_to_adjacent(values, head_dim) : values.clone();
    const double diff = max_abs_diff(converted.data<float>(), want.data<float>(), want.numel());
    EXPECT_EQ(diff, 0.0) << name;
    worst = std::max(worst, diff);
  }
  return worst;
}

inline Bytes llama2c_bytes(const LlamaConfig& config, const WeightMap& weights) {
  Bytes out;
  const int32_t vocab = static_cast<int32_t>(config.tied_output ? config.vocab_size : -config.vocab_size);
  for (int32_t value : {static_cast<int32_t>(config.model_dim), static_cast<int32_t>(config.ffn_dim), config.num_layers,
                        config.num_heads, config.num_kv_heads, vocab, static_cast<int32_t>(config.context_length)}) {
    append_pod(out, value);
  }
  const auto put = [&](const std::string& name) {
    const Bytes data = encode(weights.at(name), Storage::f32);
    out.insert(out.end(), data.begin(), data.end());
  };
  const auto put_layers = [&](const char* suffix) {
    for (int layer = 0; layer < config.num_layers; ++layer) put(concat("blk.", layer, ".", suffix));
  };
  put("token_embd.weight");
  put_layers("attn_norm.weight");
  put_layers("attn_q.weight");
  put_layers("attn_k.weight");
  put_layers("attn_v.weight");
  put_layers("attn_output.weight");
  put_layers("ffn_norm.weight");
  put_layers("ffn_gate.weight");
  put_layers("ffn_down.weight");
  put_layers("ffn_up.weight");
  put("output_norm.weight");
  out.resize(out.size() + static_cast<size_t>(config.context_length * config.head_dim) * sizeof(float));  // RoPE tables
  if (!config.tied_output) put("output.weight");
  return out;
}

inline GgufWriter gguf_llama_writer(const LlamaConfig& config, const WeightMap& weights, const std::string& arch = "llama",
                                    Storage storage = Storage::f32) {
  GgufWriter writer;
  writer.kv_string("general.architecture", arch);
  writer.kv_string("general.name", "tiny");
  writer.kv_u32(arch + ".embedding_length", static_cast<uint32_t>(config.model_dim));
  writer.kv_u32(arch + ".feed_forward_length", static_cast<uint32_t>(config.ffn_dim));
  writer.kv_u32(arch + ".block_count", static_cast<uint32_t>(config.num_layers));
  writer.kv_u32(arch + ".attention.head_count", static_cast<uint32_t>(config.num_heads));
  writer.kv_u32(arch + ".attention.head_count_kv", static_cast<uint32_t>(config.num_kv_heads));
  writer.kv_u32(arch + ".context_length", static_cast<uint32_t>(config.context_length));
  writer.kv_u32(arch + ".rope.dimension_count", static_cast<uint32_t>(config.head_dim));
  writer.kv_f32(arch + ".attention.layer_norm_rms_epsilon", config.norm_eps);
  writer.kv_f32(arch + ".rope.freq_base", config.rope_theta);
  std::vector<std::string> tokens;
  for (int64_t i = 0; i < config.vocab_size; ++i) tokens.push_back(concat("t", i));
  writer.kv_strings("tokenizer.ggml.tokens", tokens);
  writer.kv_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(config.bos_id));
  writer.kv_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(config.eos_id));
  // Norm vectors stay f32, as llama.cpp writes them.
  for (const auto& [name, tensor] : weights) {
    writer.tensor(name, tensor, tensor.rank() == 1 ? Storage::f32 : storage);
  }
  return writer;
}

inline std::string hf_llama_config_json(const LlamaConfig& config, const std::string& architecture = "LlamaForCausalLM",
                                        const std::string& model_type = "llama") {
  nlohmann::json json = {{"architectures", {architecture}},
                         {"model_type", model_type},
                         {"hidden_size", config.model_dim},
                         {"intermediate_size", config.ffn_dim},
                         {"num_hidden_layers", config.num_layers},
                         {"num_attention_heads", config.num_heads},
                         {"num_key_value_heads", config.num_kv_heads},
                         {"vocab_size", config.vocab_size},
                         {"max_position_embeddings", config.context_length},
                         {"rms_norm_eps", config.norm_eps},
                         {"rope_theta", config.rope_theta},
                         {"tie_word_embeddings", config.tied_output},
                         {"bos_token_id", config.bos_id},
                         {"eos_token_id", config.eos_id},
                         {"hidden_act", "silu"},
                         {"torch_dtype", "float32"}};
  return json.dump(2);
}

inline std::string hf_llama_name(const std::string& canonical) {
  static const std::map<std::string, std::string> globals = {{"token_embd.weight", "model.embed_tokens.weight"},
                                                             {"output_norm.weight", "model.norm.weight"},
                                                             {"output.weight", "lm_head.weight"}};
  if (const auto found = globals.find(canonical); found != globals.end()) return found->second;
  static const std::map<std::string, std::string> layer = {
      {"attn_q.weight", "self_attn.q_proj.weight"},   {"attn_k.weight", "self_attn.k_proj.weight"},
      {"attn_v.weight", "self_attn.v_proj.weight"},   {"attn_q.bias", "self_attn.q_proj.bias"},
      {"attn_k.bias", "self_attn.k_proj.bias"},       {"attn_v.bias", "self_attn.v_proj.bias"},
      {"attn_output.weight", "self_attn.o_proj.weight"}, {"ffn_gate.weight", "mlp.gate_proj.weight"},
      {"ffn_up.weight", "mlp.up_proj.weight"},        {"ffn_down.weight", "mlp.down_proj.weight"},
      {"attn_norm.weight", "input_layernorm.weight"}, {"ffn_norm.weight", "post_attention_layernorm.weight"}};
  const size_t dot = canonical.find('.', 4);
  return concat("model.layers.", canonical.substr(4, dot - 4), ".", layer.at(canonical.substr(dot + 1)));
}

// Writes a Hugging Face directory: config.json and model.safetensors (or two shards plus the index). q/k (and
// their biases) are converted to the halves layout Hugging Face uses.
inline void write_hf_llama(const std::filesystem::path& dir, const LlamaConfig& config, const WeightMap& weights,
                           Storage storage = Storage::f32, bool sharded = false,
                           const std::string& config_json = "") {
  write_text_file(dir / "config.json", config_json.empty() ? hf_llama_config_json(config) : config_json);
  SafetensorsWriter shards[2];
  nlohmann::json weight_map = nlohmann::json::object();
  size_t index = 0;
  for (const auto& [name, tensor] : weights) {
    const Tensor converted = is_rotated(name) ? adjacent_to_halves(tensor, config.head_dim) : tensor.clone();
    const size_t shard = sharded ? index++ % 2 : 0;
    shards[shard].tensor(hf_llama_name(name), converted, converted.rank() == 1 ? Storage::f32 : storage);
    weight_map[hf_llama_name(name)] = shard == 0 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  if (!sharded) {
    write_file(dir / "model.safetensors", shards[0].bytes());
    return;
  }
  write_file(dir / "model-00001-of-00002.safetensors", shards[0].bytes());
  write_file(dir / "model-00002-of-00002.safetensors", shards[1].bytes());
  write_text_file(dir / "model.safetensors.index.json",
                  nlohmann::json{{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}}.dump(2));
}

// ---------------------------------------------------------------------------------------------------------------
// BERT

inline BertConfig tiny_bert_config() {
  BertConfig config;
  config.model_dim = 8;
  config.ffn_dim = 12;
  config.num_layers = 2;
  config.num_heads = 2;
  config.vocab_size = 20;
  config.context_length = 16;
  config.type_vocab_size = 2;
  return config;
}

inline WeightMap random_bert_weights(const BertConfig& config, bool with_pooler, uint64_t seed = 100) {
  WeightMap weights;
  for (const auto& expected : io::expected_bert_tensors(config, with_pooler)) {
    weights.emplace(expected.name, random_tensor(expected.shape, seed++));
  }
  return weights;
}

inline std::string hf_bert_name(const std::string& canonical, bool prefixed) {
  const std::string prefix = prefixed ? "bert." : "";
  const size_t dot = canonical.rfind('.');
  const std::string stem = canonical.substr(0, dot);
  const std::string suffix = canonical.substr(dot);
  static const std::map<std::string, std::string> globals = {
      {"token_embd", "embeddings.word_embeddings"},   {"position_embd", "embeddings.position_embeddings"},
      {"token_types", "embeddings.token_type_embeddings"}, {"token_embd_norm", "embeddings.LayerNorm"},
      {"cls.pooler", "pooler.dense"}};
  if (stem == "cls") return concat("classifier", suffix);
  if (const auto found = globals.find(stem); found != globals.end()) return concat(prefix, found->second, suffix);
  static const std::map<std::string, std::string> layer = {
      {"attn_q", "attention.self.query"},           {"attn_k", "attention.self.key"},
      {"attn_v", "attention.self.value"},           {"attn_output", "attention.output.dense"},
      {"attn_output_norm", "attention.output.LayerNorm"}, {"ffn_up", "intermediate.dense"},
      {"ffn_down", "output.dense"},                 {"layer_output_norm", "output.LayerNorm"}};
  const size_t layer_dot = stem.find('.', 4);
  return concat(prefix, "encoder.layer.", stem.substr(4, layer_dot - 4), ".", layer.at(stem.substr(layer_dot + 1)), suffix);
}

inline std::string hf_bert_config_json(const BertConfig& config, const std::string& architecture = "BertModel") {
  nlohmann::json json = {{"architectures", {architecture}},
                         {"model_type", "bert"},
                         {"hidden_size", config.model_dim},
                         {"intermediate_size", config.ffn_dim},
                         {"num_hidden_layers", config.num_layers},
                         {"num_attention_heads", config.num_heads},
                         {"vocab_size", config.vocab_size},
                         {"max_position_embeddings", config.context_length},
                         {"type_vocab_size", config.type_vocab_size},
                         {"layer_norm_eps", config.norm_eps},
                         {"hidden_act", "gelu"}};
  if (config.num_labels > 0) {
    nlohmann::json labels = nlohmann::json::object();
    for (int64_t i = 0; i < config.num_labels; ++i) labels[std::to_string(i)] = concat("LABEL_", i);
    json["id2label"] = labels;
  }
  return json.dump(2);
}

}  // namespace jagged::testing
