// export_gguf: the file it writes loads back through jagged's own GGUF reader (load_llama_model, load_tokenizer)
// to the same config, the same weights and bit-identical logits; for llama (adjacent RoPE pairs), qwen2 (q/k/v
// biases, halves), a model loaded in halves layout (rows permuted to llama's adjacent pairs), Llama 3 RoPE
// scaling, untied output; with a synthetic vocabulary and with stories260K's own.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "io/gguf.h"
#include "io/weights.h"
#include "jagged/model_files.h"
#include "jagged/workload.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

namespace fs = std::filesystem;

class GgufExport : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = fs::temp_directory_path() /
            concat("jagged_gguf_export_", ::testing::UnitTest::GetInstance()->current_test_info()->name(), "_",
                   getpid(), ".gguf");
  }
  void TearDown() override { fs::remove(path_); }

  fs::path path_;
};

bool bit_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

// A small model of `config` with seeded random weights.
LlamaModel random_model(const LlamaConfig& config, uint64_t seed = 11) {
  WeightMap weights;
  for (const auto& expected : io::expected_llama_tensors(config)) {
    weights.emplace(expected.name, testing::random_tensor(expected.shape, seed++, -0.5f, 0.5f));
  }
  return LlamaModel(config, std::move(weights));
}

LlamaConfig small_config() {
  LlamaConfig config;
  config.model_dim = 32;
  config.ffn_dim = 48;
  config.num_layers = 2;
  config.num_heads = 4;
  config.num_kv_heads = 2;
  config.head_dim = 8;
  config.vocab_size = 300;
  config.context_length = 128;
  return config;
}

void expect_same_config(const LlamaConfig& got, const LlamaConfig& want) {
  EXPECT_EQ(got.model_dim, want.model_dim);
  EXPECT_EQ(got.ffn_dim, want.ffn_dim);
  EXPECT_EQ(got.num_layers, want.num_layers);
  EXPECT_EQ(got.num_heads, want.num_heads);
  EXPECT_EQ(got.num_kv_heads, want.num_kv_heads);
  EXPECT_EQ(got.head_dim, want.head_dim);
  EXPECT_EQ(got.vocab_size, want.vocab_size);
  EXPECT_EQ(got.context_length, want.context_length);
  EXPECT_EQ(got.rope_theta, want.rope_theta);
  EXPECT_EQ(got.norm_eps, want.norm_eps);
  EXPECT_EQ(got.tied_output, want.tied_output);
  EXPECT_EQ(got.qkv_bias, want.qkv_bias);
  EXPECT_EQ(got.bos_id, want.bos_id);
  EXPECT_EQ(got.eos_id, want.eos_id);
}

Tensor logits(const LlamaModel& model) {
  const NestedTensor batch = random_token_batch({5, 1, 17, 9}, model.config().vocab_size, 3);
  return model.forward(batch);
}

TEST_F(GgufExport, SyntheticModelRoundTripsBitForBit) {
  const LlamaModel model = LlamaModel::synthetic("tiny");  // untied output, vocab 256
  export_gguf(model, nullptr, path_);
  const LlamaModel loaded = load_llama_model(path_);
  expect_same_config(loaded.config(), model.config());
  const WeightMap want = model.canonical_weights();
  const WeightMap got = loaded.canonical_weights();
  ASSERT_EQ(got.size(), want.size());
  // Synthetic models keep q/k in rotate-half order; the file holds llama's adjacent pairs (the permutation itself
  // is checked in HalvesLayoutIsPermutedToLlamasAdjacentPairs).
  const bool permuted = model.config().rope_pairs == ops::RopePairs::halves;
  for (const auto& [name, tensor] : want) {
    const bool rotated = name.find(".attn_q.") != std::string::npos || name.find(".attn_k.") != std::string::npos;
    if (!(permuted && rotated)) {
      EXPECT_TRUE(bit_equal(got.at(name), tensor)) << name;
    }
  }
  const Tensor expected = logits(model);
  const Tensor actual = logits(loaded);
  if (permuted) {
    EXPECT_LE(testing::max_abs_diff(actual.data<float>(), expected.data<float>(), expected.numel()), 1e-4);
  } else {
    EXPECT_TRUE(bit_equal(actual, expected));
  }

  const io::GgufFile gguf = io::GgufFile::open(path_);
  EXPECT_EQ(gguf.get("general.architecture").as_string("a"), "llama");
  EXPECT_EQ(gguf.get("tokenizer.ggml.model").as_string("m"), "llama");
  for (const io::GgufTensorInfo& info : gguf.tensors()) EXPECT_EQ(info.ggml_type, 0u) << info.name;  // f32
}

// Weights resident once: after loading, the model holds its own (packed) copies of everything and nothing reads
// the file again, so its mapping is gone. (A norm left borrowed from the mapping faulted whole folios of the
// released file back in at the first forward.)
bool file_is_mapped(const fs::path& path) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.find(path.string()) != std::string::npos) return true;
  }
  return false;
}

TEST_F(GgufExport, TheLoadedModelKeepsNoMappingOfTheFile) {
  for (const bool tied : {true, false}) {
    LlamaConfig config = small_config();
    config.tied_output = tied;
    const LlamaModel model = random_model(config);
    export_gguf(model, nullptr, path_);
    for (const char* type : {"f32", "bf16", "q8_0"}) {
      const LlamaModel loaded = load_llama_model(path_, ops::parse_weight_type(type));
      const Tensor actual = logits(loaded);
      EXPECT_FALSE(file_is_mapped(path_)) << (tied ? "tied, " : "untied, ") << type;
      if (std::string(type) == "f32") {
        EXPECT_TRUE(bit_equal(actual, logits(model)));
      }
    }
  }
}

TEST_F(GgufExport, SyntheticVocabularyHasSpecialAndBytePieces) {
  const LlamaModel model = random_model(small_config());
  export_gguf(model, nullptr, path_);
  const auto tokenizer = load_tokenizer(path_);
  ASSERT_EQ(tokenizer->vocab_size(), 300);
  EXPECT_EQ(tokenizer->kind(), "sentencepiece");
  EXPECT_EQ(tokenizer->bos_id(), 1);
  EXPECT_EQ(tokenizer->eos_id(), 2);
  EXPECT_EQ(tokenizer->piece(0), "<unk>");
  EXPECT_EQ(tokenizer->piece(3 + 'A'), "<0x41>");
  EXPECT_EQ(tokenizer->piece(299), "t299");
  // Every byte has a piece, so any text encodes (byte fallback) and decodes back.
  EXPECT_EQ(tokenizer->decode(tokenizer->encode("Hi\n", true)), "Hi\n");
}

TEST_F(GgufExport, Qwen2WithBiasesRoundTripsBitForBit) {
  LlamaConfig config = small_config();
  config.qkv_bias = true;
  config.rope_pairs = ops::RopePairs::halves;  // as Hugging Face and llama.cpp's qwen2 store it
  config.rope_theta = 1e6f;
  const LlamaModel model = random_model(config);
  export_gguf(model, nullptr, path_);
  const LlamaModel loaded = load_llama_model(path_);
  expect_same_config(loaded.config(), config);
  EXPECT_EQ(loaded.config().rope_pairs, ops::RopePairs::halves);
  EXPECT_TRUE(bit_equal(logits(loaded), logits(model)));
  EXPECT_EQ(io::GgufFile::open(path_).get("general.architecture").as_string("a"), "qwen2");
}

TEST_F(GgufExport, HalvesLayoutIsPermutedToLlamasAdjacentPairs) {
  // A Llama loaded from Hugging Face keeps q/k in rotate-half order; llama.cpp's "llama" wants adjacent pairs.
  LlamaConfig config = small_config();
  config.rope_pairs = ops::RopePairs::halves;
  const LlamaModel model = random_model(config);
  export_gguf(model, nullptr, path_);
  const LlamaModel loaded = load_llama_model(path_);
  EXPECT_EQ(loaded.config().rope_pairs, ops::RopePairs::adjacent);
  const WeightMap want = model.canonical_weights();
  const WeightMap got = loaded.canonical_weights();
  // Row 2i of each adjacent head is row i of the halves head, row 2i+1 is row i + head_dim/2.
  const Tensor& q_halves = want.at("blk.1.attn_q.weight");
  const Tensor& q_adjacent = got.at("blk.1.attn_q.weight");
  const int64_t dim = config.model_dim, head_dim = config.head_dim;
  for (int64_t head = 0; head < config.num_heads; ++head) {
    for (int64_t i = 0; i < head_dim / 2; ++i) {
      for (int64_t j = 0; j < 2; ++j) {
        const float* adjacent = q_adjacent.data<float>() + (head * head_dim + 2 * i + j) * dim;
        const float* halves = q_halves.data<float>() + (head * head_dim + j * head_dim / 2 + i) * dim;
        ASSERT_EQ(std::memcmp(adjacent, halves, dim * sizeof(float)), 0) << "head " << head << " row " << i;
      }
    }
  }
  EXPECT_TRUE(bit_equal(got.at("blk.0.attn_v.weight"), want.at("blk.0.attn_v.weight")));
  // The same rotation, its pairs stored elsewhere: equal logits up to the order of the head_dim sums.
  const Tensor expected = logits(model);
  const Tensor actual = logits(loaded);
  EXPECT_LE(testing::max_abs_diff(actual.data<float>(), expected.data<float>(), expected.numel()), 1e-4);
}

TEST_F(GgufExport, Llama3RopeScalingRoundTrips) {
  LlamaConfig config = small_config();
  config.rope_theta = 500000.0f;
  config.rope_scaling.factor = 32.0f;
  config.rope_scaling.original_context = 64;
  const LlamaModel model = random_model(config);
  export_gguf(model, nullptr, path_);
  const LlamaModel loaded = load_llama_model(path_);
  EXPECT_FLOAT_EQ(loaded.config().rope_scaling.factor, 32.0f);
  EXPECT_EQ(loaded.config().rope_scaling.original_context, 64);
  const Tensor expected = logits(model);
  const Tensor actual = logits(loaded);
  EXPECT_LE(testing::max_abs_diff(actual.data<float>(), expected.data<float>(), expected.numel()), 1e-5);
}

TEST_F(GgufExport, Stories260KWithItsVocabulary) {
  const fs::path dir = testing::shared_dir() / "models" / "stories260K";
  JAGGED_REQUIRE_PATH(dir / "stories260K.bin");
  const LlamaModel model = load_llama_model(dir / "stories260K.bin");
  const auto tokenizer = load_tokenizer(dir / "tok512.bin", model.config().vocab_size);
  export_gguf(model, tokenizer.get(), path_);
  EXPECT_TRUE(bit_equal(logits(load_llama_model(path_)), logits(model)));
  const auto reloaded = load_tokenizer(path_);
  ASSERT_EQ(reloaded->vocab_size(), tokenizer->vocab_size());
  // llama2.c's export wrote spaces as ' '; GGUF pieces write them as U+2581.
  int32_t spaced = -1;
  for (int32_t id = 0; id < tokenizer->vocab_size() && spaced < 0; ++id) {
    if (tokenizer->piece(id).starts_with(' ')) spaced = id;
  }
  ASSERT_GE(spaced, 0);
  std::string expected = "\xE2\x96\x81";
  expected += tokenizer->piece(spaced).substr(1);
  EXPECT_EQ(reloaded->piece(spaced), expected);
  for (const std::string text : {"Once upon a time, there was a little girl named Lily.", "Hi!\n\"Tom\" said: 42",
                                 "   spaces  and\ttabs", ""}) {
    const std::vector<int32_t> ids = tokenizer->encode(text, true);
    EXPECT_EQ(reloaded->encode(text, true), ids) << text;
    EXPECT_EQ(reloaded->decode(ids), tokenizer->decode(ids)) << text;
  }
  // The model's vocabulary is as large as the tokenizer's: a smaller model cannot take it.
  const LlamaModel small = random_model(small_config());
  EXPECT_THROW(export_gguf(small, tokenizer.get(), path_), InvalidArgument);
}

}  // namespace
}  // namespace jagged
