// The loaders end to end: format and architecture detection, Hugging Face directories (single file, shards,
// f16/bf16), GGUF llama/qwen2/bert, llama2.c; one set of weights through all three formats; the committed
// fixtures; and the errors a user sees for broken files.
#include "io/model_loader.h"

#include <limits>
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "io/model_writers.h"

namespace jagged::io {
namespace {

namespace fs = std::filesystem;
using testing::Bytes;
using testing::Storage;
using testing::expect_file_error;

void expect_same_config(const LlamaConfig& a, const LlamaConfig& b) {
  EXPECT_EQ(a.model_dim, b.model_dim);
  EXPECT_EQ(a.ffn_dim, b.ffn_dim);
  EXPECT_EQ(a.num_layers, b.num_layers);
  EXPECT_EQ(a.num_heads, b.num_heads);
  EXPECT_EQ(a.num_kv_heads, b.num_kv_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.context_length, b.context_length);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.norm_eps, b.norm_eps);
  EXPECT_EQ(a.tied_output, b.tied_output);
  EXPECT_EQ(a.qkv_bias, b.qkv_bias);
  EXPECT_EQ(a.bos_id, b.bos_id);
  EXPECT_EQ(a.eos_id, b.eos_id);
}

// Weights as they come back from a file stored in `storage` (matrices rounded; norm vectors stay f32).
WeightMap rounded(const WeightMap& weights, Storage storage) {
  WeightMap out;
  for (const auto& [name, tensor] : weights) {
    Tensor copy = tensor.clone();
    if (tensor.rank() == 2 && storage != Storage::f32) {
      for (int64_t i = 0; i < copy.numel(); ++i) {
        float& value = copy.data<float>()[i];
        value = storage == Storage::f16 ? f16_to_f32(f32_to_f16(value)) : bf16_to_f32(f32_to_bf16(value));
      }
    }
    out.emplace(name, std::move(copy));
  }
  return out;
}

// ------------------------------------------------------------------------------------------------------------
// Detection

TEST(ModelLoader, DetectsFormatAndArchitecture) {
  const fs::path dir = testing::scratch_dir("detect");
  const LlamaConfig config = testing::tiny_llama_config();
  const WeightMap weights = testing::random_llama_weights(config);
  testing::write_file(dir / "model.bin", testing::llama2c_bytes(config, weights));
  testing::write_file(dir / "model.gguf", testing::gguf_llama_writer(config, weights).bytes());
  fs::create_directories(dir / "hf");
  testing::write_hf_llama(dir / "hf", config, weights);
  fs::create_directories(dir / "bert");
  testing::write_text_file(dir / "bert" / "config.json", testing::hf_bert_config_json(testing::tiny_bert_config()));
  fs::create_directories(dir / "empty_dir");

  EXPECT_EQ(detect_format(dir / "model.bin"), ModelFormat::llama2c);
  EXPECT_EQ(detect_format(dir / "model.gguf"), ModelFormat::gguf);
  EXPECT_EQ(detect_format(dir / "hf"), ModelFormat::huggingface);
  EXPECT_EQ(detect_architecture(dir / "model.bin"), "llama");
  EXPECT_EQ(detect_architecture(dir / "model.gguf"), "llama");
  EXPECT_EQ(detect_architecture(dir / "hf"), "llama");
  EXPECT_EQ(detect_architecture(dir / "bert"), "bert");
  expect_file_error([&] { detect_format(dir / "absent"); }, {"absent", "no such file or directory"});
  expect_file_error([&] { detect_format(dir / "empty_dir"); }, {"empty_dir", "without config.json"});
  expect_file_error([&] { load_llama(dir / "hf" / "model.safetensors"); }, {"model.safetensors", "pass the Hugging Face model directory"});

  testing::write_text_file(dir / "hf" / "config.json", R"({"architectures": ["PhiForCausalLM"], "model_type": "phi"})");
  expect_file_error([&] { detect_architecture(dir / "hf"); }, {"config.json", "unsupported model_type \"phi\""});
  testing::GgufWriter gpt2;
  gpt2.kv_string("general.architecture", "gpt2");
  testing::write_file(dir / "gpt2.gguf", gpt2.bytes());
  expect_file_error([&] { detect_architecture(dir / "gpt2.gguf"); }, {"gpt2.gguf", "unsupported architecture 'gpt2'"});
  expect_file_error([&] { load_llama(dir / "gpt2.gguf"); }, {"gpt2.gguf", "unsupported architecture 'gpt2'"});
  expect_file_error([&] { load_bert(dir / "model.bin"); }, {"model.bin", "not a BERT one"});
}

// ------------------------------------------------------------------------------------------------------------
// One set of weights in three formats

TEST(ModelLoader, SameWeightsLoadIdenticallyFromAllThreeFormats) {
  const fs::path dir = testing::scratch_dir("three");
  for (const bool tied : {false, true}) {
    LlamaConfig config = testing::tiny_llama_config();
    config.tied_output = tied;
    const WeightMap weights = testing::random_llama_weights(config);
    const fs::path case_dir = dir / (tied ? "tied" : "untied");
    fs::create_directories(case_dir / "hf");
    testing::write_file(case_dir / "model.bin", testing::llama2c_bytes(config, weights));
    testing::write_file(case_dir / "model.gguf", testing::gguf_llama_writer(config, weights).bytes());
    testing::write_hf_llama(case_dir / "hf", config, weights);

    const LoadedLlama from_llama2c = load_llama(case_dir / "model.bin");
    const LoadedLlama from_gguf = load_llama(case_dir / "model.gguf");
    const LoadedLlama from_hf = load_llama(case_dir / "hf");
    EXPECT_EQ(testing::weight_map_diff(from_llama2c.weights, weights), 0.0);
    EXPECT_EQ(testing::weight_map_diff(from_gguf.weights, weights), 0.0);
    EXPECT_EQ(testing::weight_map_diff(from_hf.weights, weights, config.head_dim), 0.0);
    expect_same_config(from_llama2c.config, config);
    expect_same_config(from_gguf.config, config);
    expect_same_config(from_hf.config, config);
    EXPECT_EQ(from_llama2c.config.rope_pairs, ops::RopePairs::adjacent);
    EXPECT_EQ(from_gguf.config.rope_pairs, ops::RopePairs::adjacent);
    EXPECT_EQ(from_hf.config.rope_pairs, ops::RopePairs::halves);
  }
}

// ------------------------------------------------------------------------------------------------------------
// Hugging Face directories

TEST(HuggingFace, LoadsShardedF16AndBf16) {
  const LlamaConfig config = testing::tiny_llama_config();
  const WeightMap weights = testing::random_llama_weights(config);
  for (const Storage storage : {Storage::f32, Storage::f16, Storage::bf16}) {
    for (const bool sharded : {false, true}) {
      const fs::path dir = testing::scratch_dir(concat("hf_", static_cast<int>(storage), sharded ? "_sharded" : ""));
      testing::write_hf_llama(dir, config, weights, storage, sharded);
      EXPECT_EQ(fs::exists(dir / "model.safetensors.index.json"), sharded);
      const LoadedLlama loaded = load_llama(dir);
      EXPECT_EQ(testing::weight_map_diff(loaded.weights, rounded(weights, storage), config.head_dim), 0.0)
          << static_cast<int>(storage) << " sharded " << sharded;
    }
  }
}

TEST(HuggingFace, TiesTheHeadWhenLmHeadIsAbsentOrTheConfigSaysSo) {
  LlamaConfig config = testing::tiny_llama_config();
  config.tied_output = true;
  WeightMap weights = testing::random_llama_weights(config);
  const fs::path dir = testing::scratch_dir("tied");
  // Config claims untied, but the file has no lm_head: tied.
  LlamaConfig claims_untied = config;
  claims_untied.tied_output = false;
  testing::write_hf_llama(dir, config, weights, Storage::f32, false, testing::hf_llama_config_json(claims_untied));
  const LoadedLlama loaded = load_llama(dir);
  EXPECT_TRUE(loaded.config.tied_output);
  EXPECT_EQ(loaded.weights.count("output.weight"), 0u);
  // Config says tied and the file also carries lm_head.weight: the copy is dropped.
  weights.emplace("output.weight", testing::random_tensor({config.vocab_size, config.model_dim}, 99));
  testing::write_hf_llama(dir, config, weights);
  const LoadedLlama with_copy = load_llama(dir);
  EXPECT_TRUE(with_copy.config.tied_output);
  EXPECT_EQ(with_copy.weights.count("output.weight"), 0u);
}

TEST(HuggingFace, Qwen2BiasesAndTiedHead) {
  LlamaConfig config = testing::tiny_llama_config();
  config.qkv_bias = true;
  config.tied_output = true;
  config.rope_theta = 1e6f;
  const WeightMap weights = testing::random_llama_weights(config);
  const fs::path dir = testing::scratch_dir("qwen2");
  testing::write_hf_llama(dir, config, weights, Storage::f32, false,
                          testing::hf_llama_config_json(config, "Qwen2ForCausalLM", "qwen2"));
  const LoadedLlama loaded = load_llama(dir);
  EXPECT_TRUE(loaded.config.qkv_bias);
  EXPECT_EQ(loaded.config.rope_theta, 1e6f);
  EXPECT_EQ(testing::weight_map_diff(loaded.weights, weights, config.head_dim), 0.0);
  EXPECT_EQ(loaded.weights.at("blk.1.attn_k.bias").shape(), (Shape{8}));

  // A Qwen2 file without its biases names the first missing one.
  LlamaConfig plain = config;
  plain.qkv_bias = false;
  testing::write_hf_llama(dir, plain, testing::random_llama_weights(plain), Storage::f32, false,
                          testing::hf_llama_config_json(config, "Qwen2ForCausalLM", "qwen2"));
  expect_file_error([&] { load_llama(dir); }, {dir.string(), "missing tensor blk.0.attn_q.bias"});
}

TEST(HuggingFace, ReportsMissingMisshapenAndUnexpectedTensors) {
  const LlamaConfig config = testing::tiny_llama_config();
  const fs::path dir = testing::scratch_dir("errors");
  {
    WeightMap weights = testing::random_llama_weights(config);
    weights.erase("blk.1.ffn_up.weight");
    testing::write_hf_llama(dir, config, weights);
    expect_file_error([&] { load_llama(dir); }, {dir.string(), "missing tensor blk.1.ffn_up.weight"});
  }
  {
    LlamaConfig wider = config;
    wider.ffn_dim = 30;  // the config says 30, the file holds 24
    testing::write_hf_llama(dir, config, testing::random_llama_weights(config), Storage::f32, false,
                            testing::hf_llama_config_json(wider));
    expect_file_error([&] { load_llama(dir); },
                      {"blk.0.ffn_gate.weight (model.layers.0.mlp.gate_proj.weight in ", "model.safetensors",
                       "as F32 [24, 16]): expected [30, 16] from config, got [24, 16]"});
  }
  {
    LlamaConfig fewer = config;
    fewer.num_layers = 1;
    testing::write_hf_llama(dir, config, testing::random_llama_weights(config), Storage::f32, false,
                            testing::hf_llama_config_json(fewer));
    expect_file_error([&] { load_llama(dir); }, {"unexpected tensor blk.1."});
  }
  {
    testing::write_hf_llama(dir, config, testing::random_llama_weights(config));
    testing::SafetensorsWriter writer;
    writer.tensor("model.embed_tokens.weight", testing::random_tensor({32, 16}, 1));
    writer.tensor("model.decoder.mystery.weight", testing::random_tensor({2}, 1));
    testing::write_file(dir / "model.safetensors", writer.bytes());
    expect_file_error([&] { load_llama(dir); }, {"model.safetensors", "unexpected tensor model.decoder.mystery.weight"});
  }
  {
    testing::write_hf_llama(dir, config, testing::random_llama_weights(config));
    testing::SafetensorsWriter writer;
    for (const auto& [name, tensor] : testing::random_llama_weights(config)) {
      if (name == "output_norm.weight") {
        writer.tensor("model.norm.weight", "I32", tensor.shape(), testing::encode(tensor, Storage::f32));
      } else {
        writer.tensor(testing::hf_llama_name(name), tensor);
      }
    }
    testing::write_file(dir / "model.safetensors", writer.bytes());
    expect_file_error([&] { load_llama(dir); }, {"model.safetensors", "unsupported dtype I32 in tensor model.norm.weight"});
  }
  {
    testing::write_hf_llama(dir, config, testing::random_llama_weights(config));
    Bytes bytes;
    {
      std::ifstream stream(dir / "model.safetensors", std::ios::binary);
      std::vector<char> chars((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
      bytes.resize(chars.size());
      std::memcpy(bytes.data(), chars.data(), chars.size());
    }
    bytes.resize(bytes.size() - 1);
    testing::write_file(dir / "model.safetensors", bytes);
    expect_file_error([&] { load_llama(dir); }, {"model.safetensors", "past the end of the data section"});
  }
  {
    fs::remove(dir / "model.safetensors");
    expect_file_error([&] { load_llama(dir); }, {"neither model.safetensors nor model.safetensors.index.json"});
  }
}

TEST(HuggingFace, ValidatesTheShardIndex) {
  const LlamaConfig config = testing::tiny_llama_config();
  const fs::path dir = testing::scratch_dir("index");
  testing::write_hf_llama(dir, config, testing::random_llama_weights(config), Storage::f32, true);
  const fs::path index = dir / "model.safetensors.index.json";
  testing::write_text_file(index, R"({"weight_map": {"model.norm.weight": "../outside.safetensors"}})");
  expect_file_error([&] { load_llama(dir); }, {"index.json", "not a plain file name"});
  testing::write_text_file(index, R"({"weight_map": {"model.norm.weight": "model-00001-of-00002.safetensors",
                                      "lm_head.weight": "model-00001-of-00002.safetensors"}})");
  expect_file_error([&] { load_llama(dir); }, {"index.json", "lists"});
  testing::write_text_file(index, R"({"weight_map": {"model.norm.weight": "missing.safetensors"}})");
  expect_file_error([&] { load_llama(dir); }, {"missing.safetensors", "cannot open"});
  testing::write_text_file(index, R"([])");
  expect_file_error([&] { load_llama(dir); }, {"weight_map"});
}

TEST(HuggingFace, LoadsBertWithAndWithoutPrefixAndClassifier) {
  for (const bool classifier : {false, true}) {
    BertConfig config = testing::tiny_bert_config();
    config.num_labels = classifier ? 3 : 0;
    const WeightMap weights = testing::random_bert_weights(config, classifier);
    const fs::path dir = testing::scratch_dir(classifier ? "classifier" : "encoder");
    testing::write_text_file(dir / "config.json",
                             testing::hf_bert_config_json(config, classifier ? "BertForSequenceClassification" : "BertModel"));
    testing::SafetensorsWriter writer;
    for (const auto& [name, tensor] : weights) writer.tensor(testing::hf_bert_name(name, classifier), tensor);
    writer.tensor(classifier ? "bert.embeddings.position_ids" : "embeddings.position_ids", "I64", {1, 16}, Bytes(128));
    testing::write_file(dir / "model.safetensors", writer.bytes());

    const LoadedBert loaded = load_bert(dir);
    EXPECT_EQ(loaded.config.model_dim, 8);
    EXPECT_EQ(loaded.config.num_labels, classifier ? 3 : 0);
    EXPECT_EQ(loaded.config.labels.size(), classifier ? 3u : 0u);
    EXPECT_EQ(testing::weight_map_diff(loaded.weights, weights), 0.0);
    if (classifier) {
      EXPECT_EQ(loaded.config.labels[2], "LABEL_2");
    }
  }
  // A classifier needs the pooler in front of it.
  BertConfig config = testing::tiny_bert_config();
  config.num_labels = 2;
  const fs::path dir = testing::scratch_dir("no_pooler");
  testing::write_text_file(dir / "config.json", testing::hf_bert_config_json(config, "BertForSequenceClassification"));
  testing::SafetensorsWriter writer;
  for (const auto& [name, tensor] : testing::random_bert_weights(config, true)) {
    if (name.rfind("cls.pooler", 0) != 0) writer.tensor(testing::hf_bert_name(name, true), tensor);
  }
  testing::write_file(dir / "model.safetensors", writer.bytes());
  expect_file_error([&] { load_bert(dir); }, {"missing tensor cls.pooler.weight"});
  expect_file_error([&] { load_llama(dir); }, {"not a Llama-family model"});
}

// ------------------------------------------------------------------------------------------------------------
// GGUF models

LoadedLlama load_gguf_bytes(const Bytes& bytes, const std::string& name = "model.gguf") {
  const fs::path path = testing::scratch_dir("gguf") / name;
  testing::write_file(path, bytes);
  return load_llama(path);
}

TEST(GgufModel, LoadsLlamaAndQwen2InF16) {
  LlamaConfig config = testing::tiny_llama_config();
  const WeightMap weights = testing::random_llama_weights(config);
  const LoadedLlama loaded = load_gguf_bytes(testing::gguf_llama_writer(config, weights, "llama", Storage::f16).bytes());
  EXPECT_EQ(testing::weight_map_diff(loaded.weights, rounded(weights, Storage::f16)), 0.0);
  expect_same_config(loaded.config, config);

  config.qkv_bias = true;
  config.tied_output = true;
  const WeightMap qwen_weights = testing::random_llama_weights(config);
  const LoadedLlama qwen = load_gguf_bytes(testing::gguf_llama_writer(config, qwen_weights, "qwen2").bytes());
  EXPECT_EQ(qwen.config.rope_pairs, ops::RopePairs::halves);
  EXPECT_TRUE(qwen.config.qkv_bias);
  EXPECT_TRUE(qwen.config.tied_output);
  EXPECT_EQ(testing::weight_map_diff(qwen.weights, qwen_weights), 0.0);
}

// F16/BF16 matrices reach the model in the file's type (widened one at a time by the packing), still checked
// for non-finite values at load; the norms are widened at load.
TEST(GgufModel, HalfMatricesStayHalfAndAreCheckedAtLoad) {
  const LlamaConfig config = testing::tiny_llama_config();
  for (const Storage storage : {Storage::f16, Storage::bf16}) {
    const DType half = storage == Storage::f16 ? DType::f16 : DType::bf16;
    const WeightMap weights = testing::random_llama_weights(config);
    const LoadedLlama loaded = load_gguf_bytes(testing::gguf_llama_writer(config, weights, "llama", storage).bytes());
    EXPECT_EQ(loaded.weights.at("blk.0.attn_q.weight").dtype(), half);
    EXPECT_EQ(loaded.weights.at("blk.1.ffn_down.weight").dtype(), half);
    EXPECT_EQ(loaded.weights.at("blk.0.attn_norm.weight").dtype(), DType::f32);
    for (const float poison : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
      WeightMap poisoned = testing::random_llama_weights(config);
      poisoned.at("blk.1.ffn_up.weight").data<float>()[7] = poison;
      expect_file_error(
          [&] { load_gguf_bytes(testing::gguf_llama_writer(config, poisoned, "llama", storage).bytes(), "half.gguf"); },
          {"half.gguf", "blk.1.ffn_up.weight", "non-finite weight", "flat index 7"});
    }
  }
}

TEST(GgufModel, ReportsBadMetadataAndTensors) {
  const LlamaConfig config = testing::tiny_llama_config();
  const WeightMap weights = testing::random_llama_weights(config);
  {
    testing::GgufWriter writer = testing::gguf_llama_writer(config, weights);
    writer.tensor("blk.0.ffn_up.weight.extra", testing::random_tensor({2}, 1));
    expect_file_error([&] { load_gguf_bytes(writer.bytes(), "extra.gguf"); },
                      {"extra.gguf", "unexpected tensor blk.0.ffn_up.weight.extra"});
  }
  {
    WeightMap wrong = testing::random_llama_weights(config);
    wrong.erase("blk.1.attn_k.weight");
    wrong.emplace("blk.1.attn_k.weight", testing::random_tensor({16, 16}, 3));
    expect_file_error([&] { load_gguf_bytes(testing::gguf_llama_writer(config, wrong).bytes(), "shape.gguf"); },
                      {"shape.gguf", "blk.1.attn_k.weight", "expected [8, 16] from config, got [16, 16]"});
  }
  {
    WeightMap missing = testing::random_llama_weights(config);
    missing.erase("output_norm.weight");
    expect_file_error([&] { load_gguf_bytes(testing::gguf_llama_writer(config, missing).bytes()); },
                      {"missing tensor output_norm.weight"});
  }
  {
    WeightMap quantised = testing::random_llama_weights(config);
    quantised.erase("blk.0.ffn_up.weight");
    testing::GgufWriter writer = testing::gguf_llama_writer(config, quantised);
    writer.tensor("blk.0.ffn_up.weight", {24, 16}, 8, Bytes(24 / 2 * 34 / 1));  // Q8_0 needs ne[0] % 32: use F16 rows
    expect_file_error([&] { load_gguf_bytes(writer.bytes()); }, {"blk.0.ffn_up.weight", "Q8_0"});
  }
  {
    testing::GgufWriter writer;
    writer.kv_string("general.architecture", "llama");
    writer.kv_string("llama.embedding_length", "sixteen");
    expect_file_error([&] { load_gguf_bytes(writer.bytes(), "meta.gguf"); },
                      {"meta.gguf", "'llama.embedding_length' is a string, expected an integer"});
  }
  {
    testing::GgufWriter writer;
    writer.kv_string("general.architecture", "llama");
    writer.kv_u32("llama.embedding_length", 16);
    expect_file_error([&] { load_gguf_bytes(writer.bytes(), "keys.gguf"); },
                      {"keys.gguf", "missing metadata key 'llama.feed_forward_length'"});
  }
  {
    testing::GgufWriter writer = testing::gguf_llama_writer(config, weights);
    writer.kv_u32("llama.attention.key_length", 2);
    expect_file_error([&] { load_gguf_bytes(writer.bytes()); }, {"partial rotary"});
  }
  {
    testing::GgufWriter writer = testing::gguf_llama_writer(config, weights);
    writer.kv_string("llama.rope.scaling.type", "yarn");
    writer.kv_f32("llama.rope.scaling.factor", 4.0f);
    expect_file_error([&] { load_gguf_bytes(writer.bytes()); }, {"rope.scaling.type 'yarn' is not supported"});
  }
  {
    testing::GgufWriter writer = testing::gguf_llama_writer(config, weights);
    writer.version = 1;
    expect_file_error([&] { load_gguf_bytes(writer.bytes(), "v1.gguf"); }, {"v1.gguf", "GGUF version 1"});
  }
}

TEST(GgufModel, BlockWeightsAreKeptOthersNamed) {
  LlamaConfig config = testing::tiny_llama_config();
  config.model_dim = 256;  // Q4_K blocks hold 256 elements along in_features
  config.num_heads = 4;
  config.head_dim = 64;
  config.num_kv_heads = 2;
  config.ffn_dim = 8;
  config.num_layers = 1;
  WeightMap weights = testing::random_llama_weights(config);
  weights.erase("blk.0.ffn_up.weight");
  testing::GgufWriter writer = testing::gguf_llama_writer(config, weights);
  {
    testing::GgufWriter q4k = testing::gguf_llama_writer(config, weights);
    q4k.tensor("blk.0.ffn_up.weight", {8, 256}, 12, Bytes(8 * 144));
    const LoadedLlama loaded = load_gguf_bytes(q4k.bytes(), "q4k.gguf");
    EXPECT_EQ(loaded.weights.at("blk.0.ffn_up.weight").dtype(), DType::q4_k);  // kept, not widened
    EXPECT_EQ(loaded.weights.at("token_embd.weight").dtype(), DType::f32);
  }
  {
    testing::GgufWriter bad = testing::gguf_llama_writer(config, weights);
    Bytes blocks(8 * 144);
    blocks[144 * 3] = std::byte{0x00};
    blocks[144 * 3 + 1] = std::byte{0x7c};  // block 3's d: +inf in f16
    bad.tensor("blk.0.ffn_up.weight", {8, 256}, 12, blocks);
    expect_file_error([&] { load_gguf_bytes(bad.bytes(), "inf.gguf"); },
                      {"inf.gguf", "blk.0.ffn_up.weight", "non-finite scale in Q4_K block 3", "corrupt"});
  }
  writer.tensor("blk.0.ffn_up.weight", {8, 256}, 10, Bytes(8 * 84));  // Q2_K
  expect_file_error([&] { load_gguf_bytes(writer.bytes(), "q2k.gguf"); },
                    {"q2k.gguf", "unsupported tensor type Q2_K in tensor blk.0.ffn_up.weight"});
}

// Llama 3 scaling as llama.cpp's converter stores it: per-frequency divisors in rope_freqs.weight.
Tensor llama3_rope_divisors(int head_dim, float theta, float factor) {
  std::vector<float> divisors;
  const double low_wavelength = 8192.0 / 1.0;
  const double high_wavelength = 8192.0 / 4.0;
  for (int i = 0; i < head_dim / 2; ++i) {
    const double inv_freq = std::pow(static_cast<double>(theta), -2.0 * i / head_dim);
    const double wavelength = 2.0 * std::numbers::pi / inv_freq;
    if (wavelength < high_wavelength) {
      divisors.push_back(1.0f);
    } else if (wavelength > low_wavelength) {
      divisors.push_back(factor);
    } else {
      const double smooth = (8192.0 / wavelength - 1.0) / (4.0 - 1.0);
      divisors.push_back(static_cast<float>(1.0 / ((1.0 - smooth) / factor + smooth)));
    }
  }
  return Tensor::from_floats(divisors, {static_cast<int64_t>(divisors.size())});
}

TEST(GgufModel, RecoversLlama3ScalingFromRopeFreqs) {
  LlamaConfig config = testing::tiny_llama_config();
  config.head_dim = 64;
  config.model_dim = 256;
  config.rope_theta = 500000.0f;
  const WeightMap weights = testing::random_llama_weights(config);
  const Tensor divisors = llama3_rope_divisors(64, 500000.0f, 32.0f);
  // All three regimes occur for head_dim 64 / theta 5e5, so the check below is not vacuous.
  ASSERT_EQ(divisors.data<float>()[0], 1.0f);
  ASSERT_EQ(divisors.data<float>()[31], 32.0f);
  testing::GgufWriter writer = testing::gguf_llama_writer(config, weights);
  writer.tensor("rope_freqs.weight", divisors);
  const LoadedLlama loaded = load_gguf_bytes(writer.bytes());
  EXPECT_EQ(loaded.config.rope_scaling.factor, 32.0f);
  EXPECT_EQ(loaded.config.rope_scaling.low_freq_factor, 1.0f);
  EXPECT_EQ(loaded.config.rope_scaling.high_freq_factor, 4.0f);
  EXPECT_EQ(loaded.config.rope_scaling.original_context, 8192);
  EXPECT_EQ(loaded.weights.count("rope_freqs.weight"), 0u);

  Tensor odd = divisors.clone();
  ASSERT_GT(odd.data<float>()[15], 1.0f);  // in the smoothly interpolated band
  ASSERT_LT(odd.data<float>()[15], 32.0f);
  odd.data<float>()[15] *= 1.1f;
  testing::GgufWriter bad = testing::gguf_llama_writer(config, weights);
  bad.tensor("rope_freqs.weight", odd);
  expect_file_error([&] { load_gguf_bytes(bad.bytes()); }, {"rope_freqs.weight[15]", "does not match Llama 3 scaling"});
}

TEST(GgufModel, LoadsBertWithPoolerAndClassifier) {
  BertConfig config = testing::tiny_bert_config();
  config.num_labels = 2;
  const WeightMap weights = testing::random_bert_weights(config, true);
  testing::GgufWriter writer;
  writer.kv_string("general.architecture", "bert");
  writer.kv_u32("bert.embedding_length", 8);
  writer.kv_u32("bert.feed_forward_length", 12);
  writer.kv_u32("bert.block_count", 2);
  writer.kv_u32("bert.attention.head_count", 2);
  writer.kv_u32("bert.context_length", 16);
  writer.kv_f32("bert.attention.layer_norm_epsilon", 1e-12f);
  writer.kv_strings("bert.classifier.output_labels", {"no", "yes"});
  std::vector<std::string> tokens(20, "x");
  writer.kv_strings("tokenizer.ggml.tokens", tokens);
  for (const auto& [name, tensor] : weights) {
    std::string gguf_name = name;  // canonical cls.pooler.* / cls.* are GGUF's cls.* / cls.output.*
    if (name.rfind("cls.pooler.", 0) == 0) {
      gguf_name = concat("cls.", name.substr(11));
    } else if (name.rfind("cls.", 0) == 0) {
      gguf_name = concat("cls.output.", name.substr(4));
    }
    writer.tensor(gguf_name, tensor);
  }
  const fs::path path = testing::scratch_dir("bert") / "bert.gguf";
  testing::write_file(path, writer.bytes());
  EXPECT_EQ(detect_architecture(path), "bert");
  const LoadedBert loaded = load_bert(path);
  EXPECT_EQ(loaded.config.num_labels, 2);
  EXPECT_EQ(loaded.config.labels, (std::vector<std::string>{"no", "yes"}));
  EXPECT_EQ(loaded.config.vocab_size, 20);
  EXPECT_EQ(loaded.config.type_vocab_size, 2);
  EXPECT_EQ(testing::weight_map_diff(loaded.weights, weights), 0.0);
  expect_file_error([&] { load_llama(path); }, {"a BERT model, not a Llama-family one"});
}

// ------------------------------------------------------------------------------------------------------------
// The committed fixtures (tests/fixtures, written independently by PyTorch + llama.cpp's gguf-py)

fs::path fixture(const std::string& name) { return fs::path(JAGGED_SOURCE_DIR) / "tests" / "fixtures" / name; }

TEST(Fixtures, LlamaTinyIsTheSameModelInAllThreeFormats) {
  const fs::path dir = fixture("llama-tiny");
  if (!fs::exists(dir / "model.gguf")) GTEST_SKIP() << "fixtures absent: " << dir;
  const LoadedLlama from_hf = load_llama(dir);
  const LoadedLlama from_gguf = load_llama(dir / "model.gguf");
  const LoadedLlama from_llama2c = load_llama(dir / "model.bin");
  const LlamaConfig& config = from_hf.config;
  EXPECT_EQ(config.model_dim, 32);
  EXPECT_EQ(config.num_layers, 2);
  EXPECT_EQ(config.num_heads, 4);
  EXPECT_EQ(config.num_kv_heads, 2);
  EXPECT_EQ(config.head_dim, 8);
  EXPECT_EQ(config.ffn_dim, 72);
  EXPECT_EQ(config.vocab_size, 300);
  EXPECT_EQ(config.context_length, 128);
  EXPECT_FALSE(config.tied_output);
  expect_same_config(from_gguf.config, config);
  expect_same_config(from_llama2c.config, config);
  EXPECT_EQ(from_hf.config.rope_pairs, ops::RopePairs::halves);
  EXPECT_EQ(from_gguf.config.rope_pairs, ops::RopePairs::adjacent);
  EXPECT_EQ(from_llama2c.config.rope_pairs, ops::RopePairs::adjacent);
  // HF q/k are in halves layout; GGUF's were permuted by llama.cpp's own code, llama2.c's by the fixture script.
  EXPECT_EQ(testing::weight_map_diff(from_gguf.weights, from_llama2c.weights), 0.0);
  EXPECT_EQ(testing::weight_map_diff(from_hf.weights, from_llama2c.weights, config.head_dim), 0.0);
}

TEST(Fixtures, LlamaTinyBf16IsLlamaTinyRounded) {
  const fs::path dir = fixture("llama-tiny-bf16");
  if (!fs::exists(dir / "model.safetensors")) GTEST_SKIP() << "fixtures absent: " << dir;
  const LoadedLlama rounded_load = load_llama(dir);
  const LoadedLlama full = load_llama(fixture("llama-tiny"));
  ASSERT_EQ(rounded_load.weights.size(), full.weights.size());
  for (const auto& [name, stored] : full.weights) {
    const Tensor& stored_got = rounded_load.weights.at(name);
    // Token embedding and attention in BF16, FFN in F16, norms and head in F32 (scripts/fixtures/README.md).
    const bool bf16 = name == "token_embd.weight" || name.find(".attn_") != std::string::npos;
    const bool f16 = name.find(".ffn_") != std::string::npos && stored.rank() == 2;
    // The matrices the model packs stay in the file's type until packing; the norms are f32.
    const DType kept = stored.rank() == 1 ? DType::f32 : bf16 ? DType::bf16 : f16 ? DType::f16 : DType::f32;
    EXPECT_EQ(stored_got.dtype(), kept) << name;
    const Tensor tensor = stored.to_f32();
    const Tensor got = stored_got.to_f32();
    for (int64_t i = 0; i < tensor.numel(); ++i) {
      const float value = tensor.data<float>()[i];
      const float want = bf16 && tensor.rank() == 2 ? bf16_to_f32(f32_to_bf16(value))
                         : f16                      ? f16_to_f32(f32_to_f16(value))
                                                    : value;
      ASSERT_EQ(got.data<float>()[i], want) << name << "[" << i << "]";
    }
  }
}

TEST(Fixtures, Qwen2AndBert) {
  const fs::path qwen_dir = fixture("llama-tiny-qwen2");
  const fs::path bert_dir = fixture("bert-tiny");
  if (!fs::exists(qwen_dir / "model.safetensors") || !fs::exists(bert_dir / "model.safetensors")) {
    GTEST_SKIP() << "fixtures absent";
  }
  const LoadedLlama qwen = load_llama(qwen_dir);
  EXPECT_TRUE(qwen.config.qkv_bias);
  EXPECT_TRUE(qwen.config.tied_output);
  EXPECT_EQ(qwen.config.rope_theta, 1e6f);
  EXPECT_EQ(qwen.config.norm_eps, 1e-6f);
  EXPECT_EQ(qwen.weights.count("output.weight"), 0u);
  EXPECT_EQ(qwen.weights.at("blk.0.attn_q.bias").shape(), (Shape{32}));

  EXPECT_EQ(detect_architecture(bert_dir), "bert");
  const LoadedBert bert = load_bert(bert_dir);
  EXPECT_EQ(bert.config.model_dim, 32);
  EXPECT_EQ(bert.config.num_layers, 2);
  EXPECT_EQ(bert.config.num_heads, 4);
  EXPECT_EQ(bert.config.ffn_dim, 96);
  EXPECT_EQ(bert.config.vocab_size, 200);
  EXPECT_EQ(bert.config.context_length, 64);
  EXPECT_EQ(bert.config.num_labels, 3);
  EXPECT_EQ(bert.config.labels, (std::vector<std::string>{"negative", "neutral", "positive"}));
  EXPECT_EQ(bert.config.gelu, ops::GeluForm::erf);
  EXPECT_EQ(bert.weights.at("cls.weight").shape(), (Shape{3, 32}));
  EXPECT_EQ(bert.weights.at("cls.pooler.weight").shape(), (Shape{32, 32}));
}

}  // namespace
}  // namespace jagged::io

namespace jagged::io {
namespace {

// Regenerates fuzz/seeds/ (tiny valid files for the libFuzzer targets):
//   build-io/tests/io_tests --gtest_also_run_disabled_tests --gtest_filter='*WriteFuzzSeeds'
TEST(FuzzSeeds, DISABLED_WriteFuzzSeeds) {
  const fs::path seeds = fs::path(JAGGED_SOURCE_DIR) / "fuzz" / "seeds";
  for (const char* name : {"gguf", "safetensors", "llama2c"}) fs::create_directories(seeds / name);
  LlamaConfig config;
  config.model_dim = 8;
  config.ffn_dim = 8;
  config.num_layers = 1;
  config.num_heads = 2;
  config.num_kv_heads = 1;
  config.head_dim = 4;
  config.vocab_size = 8;
  config.context_length = 4;
  config.tied_output = false;
  const WeightMap weights = testing::random_llama_weights(config);
  LlamaConfig tied = config;
  tied.tied_output = true;
  const WeightMap tied_weights = testing::random_llama_weights(tied);
  LlamaConfig qwen = tied;
  qwen.qkv_bias = true;
  const WeightMap qwen_weights = testing::random_llama_weights(qwen);

  testing::write_file(seeds / "llama2c" / "tiny_untied.bin", testing::llama2c_bytes(config, weights));
  testing::write_file(seeds / "llama2c" / "tiny_tied.bin", testing::llama2c_bytes(tied, tied_weights));

  testing::write_file(seeds / "gguf" / "llama_f32.gguf", testing::gguf_llama_writer(config, weights).bytes());
  testing::write_file(seeds / "gguf" / "qwen2_f16.gguf",
                      testing::gguf_llama_writer(qwen, qwen_weights, "qwen2", Storage::f16).bytes());
  testing::GgufWriter vocab;
  vocab.kv_string("general.architecture", "llama");
  vocab.kv_strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a"});
  vocab.kv_i32s("tokenizer.ggml.token_type", {2, 3, 3, 1});
  testing::write_file(seeds / "gguf" / "vocab_only.gguf", vocab.bytes());
  BertConfig bert;
  bert.model_dim = 4;
  bert.ffn_dim = 4;
  bert.num_layers = 1;
  bert.num_heads = 2;
  bert.vocab_size = 6;
  bert.context_length = 4;
  testing::GgufWriter bert_writer;
  bert_writer.kv_string("general.architecture", "bert");
  bert_writer.kv_u32("bert.embedding_length", 4);
  bert_writer.kv_u32("bert.feed_forward_length", 4);
  bert_writer.kv_u32("bert.block_count", 1);
  bert_writer.kv_u32("bert.attention.head_count", 2);
  bert_writer.kv_u32("bert.context_length", 4);
  bert_writer.kv_f32("bert.attention.layer_norm_epsilon", 1e-12f);
  bert_writer.kv_strings("tokenizer.ggml.tokens", {"[PAD]", "[CLS]", "[SEP]", "a", "b", "c"});
  for (const auto& [name, tensor] : testing::random_bert_weights(bert, true)) {
    // GGUF calls the pooler dense layer "cls".
    const std::string gguf_name = name.rfind("cls.pooler.", 0) == 0 ? concat("cls.", name.substr(11)) : name;
    bert_writer.tensor(gguf_name, tensor, Storage::bf16);
  }
  testing::write_file(seeds / "gguf" / "bert_bf16.gguf", bert_writer.bytes());

  testing::SafetensorsWriter llama;
  for (const auto& [name, tensor] : weights) llama.tensor(testing::hf_llama_name(name), tensor);
  testing::write_file(seeds / "safetensors" / "llama_f32.safetensors", llama.bytes());
  testing::SafetensorsWriter mixed;
  mixed.header_padding = 1;
  mixed.tensor("a", testing::random_tensor({2, 3}, 1), Storage::f16);
  mixed.tensor("b", testing::random_tensor({3}, 2), Storage::bf16);
  mixed.tensor("c", testing::random_tensor({1}, 3));
  mixed.tensor("ids", "I64", {2}, Bytes(16));
  testing::write_file(seeds / "safetensors" / "mixed_unaligned.safetensors", mixed.bytes());

  // The model seeds are valid, so the fuzzers start from inputs that reach the deepest checks.
  EXPECT_EQ(load_llama(seeds / "llama2c" / "tiny_untied.bin").weights.size(), weights.size());
  EXPECT_EQ(load_llama(seeds / "llama2c" / "tiny_tied.bin").weights.size(), tied_weights.size());
  EXPECT_EQ(load_llama(seeds / "gguf" / "llama_f32.gguf").weights.size(), weights.size());
  EXPECT_EQ(load_llama(seeds / "gguf" / "qwen2_f16.gguf").weights.size(), qwen_weights.size());
  EXPECT_EQ(load_bert(seeds / "gguf" / "bert_bf16.gguf").config.model_dim, 4);
}

}  // namespace
}  // namespace jagged::io
