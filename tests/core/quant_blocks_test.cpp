// ggml's block formats against an independent implementation: gguf-py's numpy (de)quantizers from llama.cpp's
// source (built by scripts/setup_llamacpp.sh) run on the same bytes, compared bit for bit. Without llama.cpp the
// comparisons skip, saying so, unless JAGGED_REQUIRE_LLAMACPP=1, where they fail (testing/llamacpp.h).
#include "core/quant_blocks.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include "jagged/dtype.h"
#include "jagged/error.h"
#include "jagged/llamacpp_peer.h"
#include "testing/llamacpp.h"

namespace jagged {
namespace {

namespace fs = std::filesystem;

// llama.cpp's gguf-py beside the driver (build/llama.cpp/src/gguf-py), or empty when llama.cpp is not built.
fs::path gguf_py_dir() {
  if (!llamacpp_available()) return {};
  const fs::path dir = llamacpp_driver_path().parent_path() / "src" / "gguf-py";
  return fs::exists(dir / "gguf" / "quants.py") ? dir : fs::path();
}

#define JAGGED_REQUIRE_GGUF_PY() JAGGED_REQUIRE_LLAMACPP_PART(!gguf_py_dir().empty(), "llama.cpp (and its gguf-py)")

std::vector<uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const fs::path& path, const void* data, size_t size) {
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
}

// One job for tests/core/quant_blocks_reference.py: `mode` on `input` as blocks of `type`.
struct GgufPyJob {
  const char* mode;
  QuantType type;
  std::vector<uint8_t> input;
};

// Runs the jobs in one python process; returns each one's output bytes.
std::vector<std::vector<uint8_t>> run_gguf_py(const std::vector<GgufPyJob>& jobs) {
  const fs::path dir = fs::temp_directory_path() / concat("jagged-quant-", getpid());
  fs::create_directories(dir);
  std::string command = concat("PYTHONPATH='", gguf_py_dir().string(), "' /usr/bin/python3 '", JAGGED_SOURCE_DIR,
                               "/tests/core/quant_blocks_reference.py'");
  for (size_t i = 0; i < jobs.size(); ++i) {
    write_bytes(dir / concat("in", i), jobs[i].input.data(), jobs[i].input.size());
    command += concat(" ", jobs[i].mode, " ", quant_layout(jobs[i].type).name, " '", (dir / concat("in", i)).string(),
                      "' '", (dir / concat("out", i)).string(), "'");
  }
  const int status = std::system(command.c_str());
  std::vector<std::vector<uint8_t>> outputs(jobs.size());
  for (size_t i = 0; status == 0 && i < jobs.size(); ++i) outputs[i] = read_bytes(dir / concat("out", i));
  fs::remove_all(dir);
  EXPECT_EQ(status, 0) << command;
  return outputs;
}

// Random blocks: random bytes, with each f16 field a finite value (a random f16 could be inf or NaN).
std::vector<uint8_t> random_blocks(QuantType type, int64_t count, uint32_t seed) {
  const QuantLayout& layout = quant_layout(type);
  std::vector<uint8_t> bytes(static_cast<size_t>(count * layout.bytes));
  std::mt19937 random(seed);
  for (uint8_t& byte : bytes) byte = static_cast<uint8_t>(random());
  std::uniform_real_distribution<float> uniform(-2.0f, 2.0f);
  for (int64_t b = 0; b < count; ++b) {
    uint8_t* block = bytes.data() + b * layout.bytes;
    std::vector<int> fields;
    switch (type) {
      case QuantType::q4_0: case QuantType::q5_0: case QuantType::q8_0: fields = {0}; break;
      case QuantType::q4_1: case QuantType::q5_1: case QuantType::q4_k: case QuantType::q5_k: fields = {0, 2}; break;
      case QuantType::q6_k: fields = {208}; break;
    }
    for (const int field : fields) {
      const uint16_t bits = f32_to_f16(uniform(random));
      std::memcpy(block + field, &bits, 2);
    }
  }
  return bytes;
}

TEST(QuantBlocks, LayoutsMatchGgml) {
  EXPECT_EQ(quant_layout(QuantType::q4_k).bytes, 144);
  EXPECT_EQ(quant_layout(QuantType::q6_k).bytes, 210);
  EXPECT_EQ(quant_row_bytes(QuantType::q5_0, 64), 44);
  EXPECT_EQ(*quant_type_of_ggml(12), QuantType::q4_k);
  EXPECT_FALSE(quant_type_of_ggml(0).has_value());  // F32
  EXPECT_FALSE(quant_type_of_ggml(10).has_value());  // Q2_K: not supported
  for (const QuantType type : kQuantTypes) EXPECT_EQ(*quant_type_of(dtype_of(type)), type);
  EXPECT_EQ(dtype_nbytes(DType::q4_k, 512), size_t{288});
  EXPECT_THROW(quantize_block(QuantType::q4_k, nullptr, 0, nullptr), InvalidArgument);
}

// The K types' factors give back every dequantized value, bit for bit: w = (d sub_scale) q - (dmin sub_min), the
// products exact in f32 (the packed weights store the factors and multiply them in registers). dequantize_block
// is separate code (checked against gguf-py).
TEST(QuantBlocks, KBlockScalesGiveTheDequantizedValues) {
  for (const QuantType type : {QuantType::q4_k, QuantType::q5_k, QuantType::q6_k}) {
    const std::vector<uint8_t> blocks = random_blocks(type, 8, 13);
    for (int64_t b = 0; b < 8; ++b) {
      const uint8_t* block = blocks.data() + b * quant_layout(type).bytes;
      float steps[16];
      float offsets[16];
      int8_t quants[256];
      decode_block_groups(type, block, steps, offsets, quants);
      float expected[256];
      dequantize_block(type, block, expected);
      const KBlockScales scales = k_block_scales(type, block);
      for (int64_t i = 0; i < 256; ++i) {
        const int64_t g = i / quant_group_values(type);
        const float step = f16_to_f32(scales.d) * static_cast<float>(scales.sub_scales[g]);
        const float offset =
            type == QuantType::q6_k ? 0.0f : f16_to_f32(scales.dmin) * static_cast<float>(scales.sub_mins[g]);
        const float value = step * static_cast<float>(quants[i]) - offset;
        EXPECT_EQ(std::memcmp(&value, &expected[i], 4), 0) << quant_layout(type).name << " value " << i;
      }
    }
  }
  EXPECT_THROW(k_block_scales(QuantType::q4_0, nullptr), InvalidArgument);
}

TEST(QuantBlocks, DequantizesBitExactlyAsGgufPy) {
  JAGGED_REQUIRE_GGUF_PY();
  const int64_t count = 64;
  std::vector<GgufPyJob> jobs;
  for (const QuantType type : kQuantTypes) jobs.push_back({"dequantize", type, random_blocks(type, count, 11)});
  const std::vector<std::vector<uint8_t>> outputs = run_gguf_py(jobs);
  for (size_t job = 0; job < jobs.size(); ++job) {
    const QuantType type = jobs[job].type;
    const std::vector<uint8_t>& expected = outputs[job];
    std::vector<float> actual(static_cast<size_t>(count * quant_layout(type).values));
    dequantize_row(type, jobs[job].input.data(), static_cast<int64_t>(actual.size()), actual.data());
    ASSERT_EQ(expected.size(), actual.size() * sizeof(float)) << quant_layout(type).name;
    for (size_t i = 0; i < actual.size(); ++i) {
      float reference = 0.0f;
      std::memcpy(&reference, expected.data() + i * sizeof(float), sizeof(float));
      ASSERT_EQ(std::memcmp(&reference, &actual[i], sizeof(float)), 0)
          << quant_layout(type).name << " value " << i << ": gguf-py " << reference << ", jagged " << actual[i];
    }
  }
}

TEST(QuantBlocks, QuantizesBitExactlyAsGgufPy) {
  JAGGED_REQUIRE_GGUF_PY();
  std::mt19937 random(5);
  std::uniform_real_distribution<float> uniform(-3.0f, 3.0f);
  std::vector<float> values(32 * 40);
  for (float& value : values) value = uniform(random);
  for (int i = 0; i < 32; ++i) values[i] = 0.0f;   // an all-zero block
  values[40] = values[41] = -3.5f;                  // ties for the largest magnitude
  std::vector<GgufPyJob> jobs;
  const auto* value_bytes = reinterpret_cast<const uint8_t*>(values.data());
  for (const QuantType type : kQuantTypes) {
    if (can_quantize(type)) jobs.push_back({"quantize", type, {value_bytes, value_bytes + values.size() * sizeof(float)}});
  }
  const std::vector<std::vector<uint8_t>> outputs = run_gguf_py(jobs);
  for (size_t job = 0; job < jobs.size(); ++job) {
    const QuantType type = jobs[job].type;
    const int64_t bytes = quant_layout(type).bytes;
    std::vector<uint8_t> actual(values.size() / 32 * static_cast<size_t>(bytes));
    for (size_t b = 0; b < values.size() / 32; ++b) quantize_block(type, values.data() + b * 32, 32, actual.data() + b * bytes);
    const std::vector<uint8_t>& expected = outputs[job];
    ASSERT_EQ(expected.size(), actual.size()) << quant_layout(type).name;
    for (size_t i = 0; i < actual.size(); ++i) {
      ASSERT_EQ(int{expected[i]}, int{actual[i]}) << quant_layout(type).name << " byte " << i << " (block " << i / bytes
                                                  << ")";
    }
  }
}

}  // namespace
}  // namespace jagged
