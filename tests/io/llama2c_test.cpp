#include "io/llama2c.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "io/model_writers.h"
#include "jagged/memory.h"

namespace jagged::io {
namespace {

using testing::Bytes;
using testing::expect_file_error;

LoadedLlama load_bytes(const Bytes& bytes, const std::string& name = "tiny.bin") {
  return load_llama2c(MappedFile::from_bytes(bytes, name));
}

void set_header(Bytes& bytes, int field, int32_t value) { std::memcpy(bytes.data() + 4 * field, &value, 4); }

TEST(Llama2c, LoadsUntiedAndTiedCheckpoints) {
  for (const bool tied : {false, true}) {
    LlamaConfig config = testing::tiny_llama_config();
    config.tied_output = tied;
    const WeightMap weights = testing::random_llama_weights(config);
    const LoadedLlama loaded = load_bytes(testing::llama2c_bytes(config, weights));
    EXPECT_EQ(loaded.config.model_dim, 16);
    EXPECT_EQ(loaded.config.ffn_dim, 24);
    EXPECT_EQ(loaded.config.num_layers, 2);
    EXPECT_EQ(loaded.config.num_heads, 4);
    EXPECT_EQ(loaded.config.num_kv_heads, 2);
    EXPECT_EQ(loaded.config.head_dim, 4);
    EXPECT_EQ(loaded.config.vocab_size, 32);
    EXPECT_EQ(loaded.config.context_length, 64);
    EXPECT_EQ(loaded.config.tied_output, tied);
    EXPECT_EQ(loaded.config.rope_pairs, ops::RopePairs::adjacent);
    EXPECT_EQ(loaded.config.bos_id, 1);
    EXPECT_EQ(loaded.config.eos_id, 2);
    EXPECT_EQ(testing::weight_map_diff(loaded.weights, weights), 0.0);
    EXPECT_EQ(loaded.weights.count("output.weight"), tied ? 0u : 1u);
  }
}

// NaN or Inf weights would give NaN logits that greedy decoding turns into token 0 forever: refused at load,
// naming the tensor (the check is in read_weights, so every format has it).
TEST(Llama2c, NonFiniteWeightsAreRefusedNamingTheTensor) {
  const LlamaConfig config = testing::tiny_llama_config();
  for (const float poison : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    WeightMap weights = testing::random_llama_weights(config);
    weights.at("blk.0.attn_q.weight").data<float>()[7] = poison;
    expect_file_error([&] { load_bytes(testing::llama2c_bytes(config, weights), "poisoned.bin"); },
                      {"poisoned.bin", "blk.0.attn_q.weight", "non-finite weight", "flat index"});
  }
}

TEST(Llama2c, SizeMustMatchTheHeaderExactly) {
  const LlamaConfig config = testing::tiny_llama_config();
  Bytes bytes = testing::llama2c_bytes(config, testing::random_llama_weights(config));
  const size_t size = bytes.size();
  Bytes short_file(bytes.begin(), bytes.end() - 4);
  expect_file_error([&] { load_bytes(short_file, "cut.bin"); },
                    {"cut.bin", "truncated", concat(size, " bytes"), concat("has ", size - 4)});
  Bytes long_file = bytes;
  long_file.push_back(std::byte{0});
  expect_file_error([&] { load_bytes(long_file, "long.bin"); },
                    {"long.bin", "trailing bytes", concat(size, " bytes"), concat("has ", size + 1)});
  expect_file_error([&] { load_bytes(Bytes(27), "header.bin"); }, {"header.bin", "truncated", "27 bytes"});
  // Flipping the classifier flag changes the implied size by vocab * dim floats.
  set_header(bytes, 5, static_cast<int32_t>(config.vocab_size));
  expect_file_error([&] { load_bytes(bytes); }, {"trailing bytes"});
}

TEST(Llama2c, RejectsImplausibleHeaders) {
  const LlamaConfig config = testing::tiny_llama_config();
  const Bytes good = testing::llama2c_bytes(config, testing::random_llama_weights(config));
  const auto with = [&](int field, int32_t value) {
    Bytes bytes = good;
    set_header(bytes, field, value);
    return bytes;
  };
  expect_file_error([&] { load_bytes(with(3, 3), "h.bin"); }, {"h.bin", "n_heads 3 does not divide dim 16"});
  expect_file_error([&] { load_bytes(with(4, 3)); }, {"num_kv_heads 3 does not divide num_heads 4"});
  expect_file_error([&] { load_bytes(with(4, 8)); }, {"num_kv_heads 8 is outside"});
  expect_file_error([&] { load_bytes(with(0, -16)); }, {"dim -16 is outside"});
  expect_file_error([&] { load_bytes(with(2, 0)); }, {"num_layers 0 is outside"});
  expect_file_error([&] { load_bytes(with(3, 0)); }, {"n_heads 0 is outside"});
  expect_file_error([&] { load_bytes(with(5, 0)); }, {"vocab_size 0 is outside"});
  expect_file_error([&] { load_bytes(with(5, std::numeric_limits<int32_t>::min())); }, {"vocab_size", "outside"});
  expect_file_error([&] { load_bytes(with(6, -1)); }, {"context_length -1 is outside"});
  // Sizes whose products would overflow 32-bit (and be absurd) are rejected before any arithmetic on them.
  expect_file_error([&] { load_bytes(with(1, std::numeric_limits<int32_t>::max())); }, {"ffn_dim 2147483647 is outside"});
  expect_file_error([&] { load_bytes(with(0, 1 << 30)); }, {"dim 1073741824 is outside"});
  // The message shows the whole header.
  expect_file_error([&] { load_bytes(with(4, 3)); }, {"dim 16, hidden_dim 24, n_layers 2, n_heads 4, n_kv_heads 3"});
  // export.py's versioned format.
  expect_file_error([&] { load_bytes(with(0, 0x616b3432)); }, {"versioned export", "ak42"});
}

TEST(Llama2c, Stories260K) {
  const auto path = testing::shared_dir() / "models" / "stories260K" / "stories260K.bin";
  JAGGED_REQUIRE_PATH(path);
  const int64_t allocated_before = memory_stats().current_bytes;
  const LoadedLlama loaded = load_llama2c(path);
  // All f32 at 4-byte aligned offsets (28-byte header): every tensor is borrowed from the mapping.
  EXPECT_EQ(memory_stats().current_bytes, allocated_before);
  const LlamaConfig& config = loaded.config;  // README: dim 64, hidden 172, 5 layers, 8 heads, 4 kv heads, ...
  EXPECT_EQ(config.model_dim, 64);
  EXPECT_EQ(config.ffn_dim, 172);
  EXPECT_EQ(config.num_layers, 5);
  EXPECT_EQ(config.num_heads, 8);
  EXPECT_EQ(config.num_kv_heads, 4);
  EXPECT_EQ(config.head_dim, 8);
  EXPECT_EQ(config.vocab_size, 512);
  EXPECT_EQ(config.context_length, 512);
  EXPECT_EQ(config.rope_theta, 10000.0f);
  EXPECT_EQ(config.norm_eps, 1e-5f);
  EXPECT_TRUE(config.tied_output);
  EXPECT_EQ(config.rope_pairs, ops::RopePairs::adjacent);
  EXPECT_EQ(config.bos_id, 1);
  EXPECT_EQ(config.eos_id, 2);
  EXPECT_EQ(loaded.weights.size(), 2 + 9 * 5u);
  EXPECT_EQ(loaded.weights.at("token_embd.weight").shape(), (Shape{512, 64}));
  EXPECT_EQ(loaded.weights.at("blk.4.attn_k.weight").shape(), (Shape{32, 64}));
  EXPECT_EQ(loaded.weights.at("blk.0.ffn_down.weight").shape(), (Shape{64, 172}));
  for (const auto& [name, tensor] : loaded.weights) {
    double sum_squares = 0.0;
    for (int64_t i = 0; i < tensor.numel(); ++i) {
      ASSERT_TRUE(std::isfinite(tensor.data<float>()[i])) << name << "[" << i << "]";
      sum_squares += static_cast<double>(tensor.data<float>()[i]) * tensor.data<float>()[i];
    }
    const double rms = std::sqrt(sum_squares / static_cast<double>(tensor.numel()));
    // Trained weights: neither zero nor blown up (norm gains are O(1), matrices O(0.01..0.5)).
    EXPECT_GT(rms, 1e-3) << name;
    EXPECT_LT(rms, 20.0) << name;
  }
}

}  // namespace
}  // namespace jagged::io
