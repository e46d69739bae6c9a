#include "io/gguf_model.h"

#include <cmath>
#include <limits>
#include <numbers>

#include "io/weights.h"
#include "jagged/error.h"

namespace jagged::io {
namespace {

// Typed reads of "<arch>.<key>" metadata; errors name the file and the key.
class Metadata {
 public:
  Metadata(const GgufFile& gguf, std::string arch) : gguf_(gguf), arch_(std::move(arch)), source_(gguf.path().string()) {}

  const std::string& source() const { return source_; }

  // Runs a GgufValue accessor, prefixing its error (which names only the key) with the file.
  template <typename Read>
  auto wrap(Read read) const -> decltype(read()) {
    try {
      return read();
    } catch (const FileError& error) {
      throw FileError(concat(source_, ": ", error.what()));
    }
  }

  const GgufValue* find(const std::string& key) const { return gguf_.find(key); }

  int64_t integer(const std::string& key, std::optional<int64_t> fallback, int64_t low, int64_t high) const {
    const GgufValue* value = gguf_.find(key);
    if (value == nullptr) {
      if (!fallback) throw FileError(concat(source_, ": missing metadata key '", key, "'"));
      return *fallback;
    }
    return checked_range(wrap([&] { return value->as_int(key); }), low, high, key, source_);
  }
  int64_t arch_integer(const char* key, std::optional<int64_t> fallback, int64_t low, int64_t high) const {
    return integer(concat(arch_, ".", key), fallback, low, high);
  }

  double arch_number(const char* key, double fallback) const {
    const std::string full = concat(arch_, ".", key);
    const GgufValue* value = gguf_.find(full);
    return value == nullptr ? fallback : wrap([&] { return value->as_float(full); });
  }

  std::string string(const std::string& key, const std::string& fallback) const {
    const GgufValue* value = gguf_.find(key);
    return value == nullptr ? fallback : wrap([&] { return value->as_string(key); });
  }

  // Length of an array value, or nullopt when absent.
  std::optional<int64_t> array_length(const std::string& key) const {
    const GgufValue* value = gguf_.find(key);
    if (value == nullptr) return std::nullopt;
    const auto* array = std::get_if<GgufValue::Array>(&value->value);
    if (array == nullptr) throw FileError(concat(source_, ": metadata key '", key, "' is not an array"));
    return static_cast<int64_t>(array->size());
  }

 private:

  const GgufFile& gguf_;
  std::string arch_;
  std::string source_;
};

// Rows of a rank-2 tensor's PyTorch shape, or -1 (rejected by the range checks) when absent or not rank 2.
int64_t rows_of(const GgufFile& gguf, const char* name) {
  const GgufTensorInfo* info = gguf.find_tensor(name);
  return info != nullptr && info->shape.size() == 2 ? info->shape[0] : -1;
}

int64_t vocab_size(const GgufFile& gguf, const Metadata& meta, const std::string& arch) {
  if (meta.find(arch + ".vocab_size") != nullptr) {
    return meta.integer(arch + ".vocab_size", std::nullopt, 1, int64_t{1} << 24);
  }
  if (const std::optional<int64_t> tokens = meta.array_length("tokenizer.ggml.tokens")) {
    return checked_range(*tokens, 1, int64_t{1} << 24, "tokenizer.ggml.tokens length", meta.source());
  }
  return checked_range(rows_of(gguf, "token_embd.weight"), 1, int64_t{1} << 24,
                       "vocab size (rows of token_embd.weight)", meta.source());
}

// keep_blocks: the tensor is handed over as stored (a block type kept quantized, F16/BF16 kept in their type
// until packing; never widened as a whole).
SourceTensor source_of(const std::shared_ptr<const GgufFile>& gguf, const GgufTensorInfo& info,
                       const std::string& name, bool keep_blocks = false) {
  const GgufTensorInfo* entry = &info;  // lives as long as the GgufFile the lambdas share
  return SourceTensor{concat(name, " in ", gguf->path().string(), " as ", ggml_type_name(info.ggml_type), " ",
                             shape_string(info.shape)),
                      info.shape, [gguf, entry] { gguf->check_readable(*entry); },
                      [gguf, entry, keep_blocks] {
                        return keep_blocks ? gguf->read_stored(*entry) : gguf->read_f32(*entry);
                      }};
}

// llama.cpp's converter stores Llama 3 RoPE scaling as per-frequency divisors (rope_freqs.weight). We keep the
// parametric form: recover it and check that it reproduces every stored divisor.
ops::RopeScaling rope_scaling_from_freqs(const GgufFile& gguf, const GgufTensorInfo& info, const LlamaConfig& config,
                                         int64_t original_context) {
  const std::string source = gguf.path().string();
  const int64_t half = config.head_dim / 2;
  if (info.shape != Shape{half}) {
    throw FileError(concat(source, ": rope_freqs.weight: expected ", shape_string({half}), " from config, got ",
                           shape_string(info.shape)));
  }
  const Tensor stored = gguf.read_f32(info);
  const float* divisors = stored.data<float>();
  float factor = 1.0f;
  for (int64_t i = 0; i < half; ++i) {
    if (!std::isfinite(divisors[i]) || !(divisors[i] > 0.0f)) {
      throw FileError(concat(source, ": rope_freqs.weight[", i, "] = ", divisors[i], " is not a positive divisor"));
    }
    factor = std::max(factor, divisors[i]);
  }
  ops::RopeScaling scaling;
  if (factor == 1.0f) return scaling;
  scaling.factor = factor;
  scaling.low_freq_factor = 1.0f;
  scaling.high_freq_factor = 4.0f;
  scaling.original_context = original_context;
  const double low_wavelength = static_cast<double>(original_context) / scaling.low_freq_factor;
  const double high_wavelength = static_cast<double>(original_context) / scaling.high_freq_factor;
  for (int64_t i = 0; i < half; ++i) {
    const double inv_freq = std::pow(static_cast<double>(config.rope_theta), -2.0 * i / config.head_dim);
    const double wavelength = 2.0 * std::numbers::pi / inv_freq;
    double expected = factor;
    if (wavelength < high_wavelength) {
      expected = 1.0;
    } else if (wavelength <= low_wavelength) {
      const double smooth = (original_context / wavelength - scaling.low_freq_factor) /
                            (scaling.high_freq_factor - scaling.low_freq_factor);
      expected = 1.0 / ((1.0 - smooth) / factor + smooth);
    }
    if (std::fabs(divisors[i] - expected) > 1e-3 * expected) {
      throw FileError(concat(source, ": rope_freqs.weight[", i, "] = ", divisors[i],
                             " does not match Llama 3 scaling (factor ", factor, ", low_freq_factor 1, "
                             "high_freq_factor 4, original context ", original_context, "), which predicts ",
                             expected));
    }
  }
  return scaling;
}

}  // namespace

std::string gguf_family(const GgufFile& gguf) {
  const std::string arch = Metadata(gguf, "").string("general.architecture", "");
  if (arch == "llama" || arch == "qwen2") return "llama";
  if (arch == "bert") return "bert";
  throw FileError(concat(gguf.path().string(), ": unsupported architecture '", arch.empty() ? "(none)" : arch,
                         "' in general.architecture (supported: llama, qwen2, bert)"));
}

LoadedLlama load_llama_gguf(std::shared_ptr<const GgufFile> gguf) {
  if (gguf_family(*gguf) != "llama") {
    throw FileError(concat(gguf->path().string(), ": a BERT model, not a Llama-family one"));
  }
  const std::string arch = gguf->get("general.architecture").as_string("general.architecture");
  const Metadata meta(*gguf, arch);
  const std::string& source = meta.source();
  LlamaConfig config;
  config.model_dim = meta.arch_integer("embedding_length", std::nullopt, 1, int64_t{1} << 17);
  config.ffn_dim = meta.arch_integer("feed_forward_length", std::nullopt, 1, int64_t{1} << 20);
  config.num_layers = static_cast<int>(meta.arch_integer("block_count", std::nullopt, 1, 1024));
  config.num_heads = static_cast<int>(meta.arch_integer("attention.head_count", std::nullopt, 1, 1024));
  config.num_kv_heads =
      static_cast<int>(meta.arch_integer("attention.head_count_kv", config.num_heads, 1, config.num_heads));
  if (meta.find(arch + ".attention.key_length") == nullptr && config.model_dim % config.num_heads != 0) {
    throw FileError(concat(source, ": attention.head_count ", config.num_heads, " does not divide embedding_length ",
                           config.model_dim));
  }
  config.head_dim =
      static_cast<int>(meta.arch_integer("attention.key_length", config.model_dim / config.num_heads, 2, 1024));
  const int64_t value_length = meta.arch_integer("attention.value_length", config.head_dim, 1, 1024);
  const int64_t rotary_dims = meta.arch_integer("rope.dimension_count", config.head_dim, 1, 1024);
  if (value_length != config.head_dim || rotary_dims != config.head_dim) {
    throw FileError(concat(source, ": key length ", config.head_dim, ", value length ", value_length,
                           " and rope.dimension_count ", rotary_dims, " differ (partial rotary is not supported)"));
  }
  config.context_length = meta.arch_integer("context_length", std::nullopt, 1, int64_t{1} << 24);
  config.norm_eps = static_cast<float>(meta.arch_number("attention.layer_norm_rms_epsilon", 1e-5));
  config.rope_theta = static_cast<float>(meta.arch_number("rope.freq_base", 10000.0));
  const std::string scaling_type = meta.string(arch + ".rope.scaling.type", "none");
  if (scaling_type != "none" && meta.arch_number("rope.scaling.factor", 1.0) != 1.0) {
    throw FileError(concat(source, ": rope.scaling.type '", scaling_type, "' is not supported"));
  }
  config.vocab_size = vocab_size(*gguf, meta, arch);
  config.tied_output = gguf->find_tensor("output.weight") == nullptr;
  // llama.cpp's converter permutes Llama q/k rows for adjacent pairs; Qwen2 keeps Hugging Face's halves layout.
  config.rope_pairs = arch == "qwen2" ? ops::RopePairs::halves : ops::RopePairs::adjacent;
  config.qkv_bias = arch == "qwen2" || gguf->find_tensor("blk.0.attn_q.bias") != nullptr;
  config.bos_id = static_cast<int32_t>(meta.integer("tokenizer.ggml.bos_token_id", 1, -1, config.vocab_size - 1));
  config.eos_id = static_cast<int32_t>(meta.integer("tokenizer.ggml.eos_token_id", 2, -1, config.vocab_size - 1));
  validate_config(config, source);

  SourceMap sources;
  const GgufTensorInfo* rope_freqs = nullptr;
  for (const GgufTensorInfo& info : gguf->tensors()) {
    if (info.name == "rope_freqs.weight") {
      rope_freqs = &info;
    } else if (info.name.find(".attn_rot_embd") == std::string::npos) {  // legacy RoPE tables: unused
      sources.emplace(info.name, source_of(gguf, info, info.name, is_llama_linear_weight(info.name)));
    }
  }
  if (rope_freqs != nullptr) {  // a few hundred bytes: read ahead of the validation of the large tensors
    gguf->check_readable(*rope_freqs);
    const int64_t original_context =
        meta.arch_integer("rope.scaling.original_context_length", 8192, 1, int64_t{1} << 24);
    config.rope_scaling = rope_scaling_from_freqs(*gguf, *rope_freqs, config, original_context);
  }
  LoadedLlama loaded;
  loaded.weights = read_weights(sources, expected_llama_tensors(config), source);
  loaded.config = config;
  return loaded;
}

LoadedBert load_bert_gguf(std::shared_ptr<const GgufFile> gguf) {
  if (gguf_family(*gguf) != "bert") {
    throw FileError(concat(gguf->path().string(), ": a Llama-family model, not a BERT one"));
  }
  const Metadata meta(*gguf, "bert");
  const std::string& source = meta.source();
  BertConfig config;
  config.model_dim = meta.arch_integer("embedding_length", std::nullopt, 1, int64_t{1} << 17);
  config.ffn_dim = meta.arch_integer("feed_forward_length", std::nullopt, 1, int64_t{1} << 20);
  config.num_layers = static_cast<int>(meta.arch_integer("block_count", std::nullopt, 1, 1024));
  config.num_heads = static_cast<int>(meta.arch_integer("attention.head_count", std::nullopt, 1, 1024));
  config.context_length = meta.arch_integer("context_length", std::nullopt, 1, int64_t{1} << 24);
  config.norm_eps = static_cast<float>(meta.arch_number("attention.layer_norm_epsilon", 1e-12));
  config.vocab_size = vocab_size(*gguf, meta, "bert");
  config.type_vocab_size = gguf->find_tensor("token_types.weight") != nullptr
                               ? checked_range(rows_of(*gguf, "token_types.weight"), 1, 1 << 16,
                                               "rows of token_types.weight", source)
                               : 2;
  if (const GgufValue* causal = meta.find("bert.attention.causal")) {
    if (std::get_if<bool>(&causal->value) != nullptr && std::get<bool>(causal->value)) {
      throw FileError(concat(source, ": bert.attention.causal is true; BERT attention is bidirectional"));
    }
  }
  config.gelu = ops::GeluForm::erf;  // GGUF records no activation; BERT's is exact GELU

  // llama.cpp names the pooler dense layer "cls" and the classifier after it "cls.output".
  SourceMap sources;
  for (const GgufTensorInfo& info : gguf->tensors()) {
    std::string name = info.name;
    if (name == "cls.weight" || name == "cls.bias") {
      name = concat("cls.pooler", name.substr(3));
    } else if (name == "cls.output.weight" || name == "cls.output.bias") {
      name = concat("cls", name.substr(10));
    }
    sources.emplace(name, source_of(gguf, info, info.name));
  }
  if (gguf->find_tensor("cls.output.weight") != nullptr) {
    config.num_labels =
        checked_range(rows_of(*gguf, "cls.output.weight"), 1, 1 << 20, "rows of cls.output.weight", source);
    if (const GgufValue* labels = meta.find("bert.classifier.output_labels")) {
      config.labels = meta.wrap([&] { return labels->as_strings("bert.classifier.output_labels"); });
      if (static_cast<int64_t>(config.labels.size()) != config.num_labels) {
        throw FileError(concat(source, ": bert.classifier.output_labels has ", config.labels.size(),
                               " names for ", config.num_labels, " classifier outputs"));
      }
    }
  }
  validate_config(config, source);
  LoadedBert loaded;
  loaded.weights = read_weights(sources, expected_bert_tensors(config, sources.count("cls.pooler.weight") > 0), source);
  loaded.config = config;
  return loaded;
}

}  // namespace jagged::io
