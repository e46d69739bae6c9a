// Quantized GGUF files made by llama.cpp's own llama-quantize, run by both engines: stories260K exported by jagged
// (f32), then quantized to Q8_0 and Q4_K_M into the build folder at test time (never committed). jagged keeps the
// file's block types (no widening) and must give llama.cpp's logits within a tolerance, and for Q8_0 its greedy
// tokens. Needs llama.cpp (scripts/setup_llamacpp.sh, which builds llama-quantize) and ../shared: skips without
// them, saying so, unless JAGGED_REQUIRE_LLAMACPP=1 / JAGGED_REQUIRE_SHARED=1, where it fails.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "jagged/decode_bench.h"
#include "jagged/error.h"
#include "jagged/generate.h"
#include "jagged/llama.h"
#include "jagged/llamacpp_peer.h"
#include "jagged/model_files.h"
#include "jagged/tokenizer.h"
#include "testing/llamacpp.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

namespace fs = std::filesystem;

fs::path llama_quantize_path() {
  if (!llamacpp_available()) return {};
  const fs::path path = llamacpp_driver_path().parent_path() / "build" / "bin" / "llama-quantize";
  return access(path.c_str(), X_OK) == 0 ? path : fs::path();
}

class QuantizedStories260K : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path dir = testing::shared_dir() / "models" / "stories260K";
    JAGGED_REQUIRE_LLAMACPP_PART(!llama_quantize_path().empty(), "llama.cpp's llama-quantize");
    JAGGED_REQUIRE_PATH(dir / "stories260K.bin");
    const LlamaModel f32 = load_llama_model(dir / "stories260K.bin");
    tokenizer_ = load_tokenizer(dir / "tok512.bin", f32.config().vocab_size);
    const fs::path folder = fs::path(JAGGED_BINARY_DIR) / "test-fixtures";
    fs::create_directories(folder);
    const fs::path source = folder / concat("stories260K-f32-", getpid(), ".gguf");
    export_gguf(f32, tokenizer_.get(), source);
    for (const char* type : {"Q8_0", "Q4_K_M"}) {
      // ctest -j runs this fixture's tests in parallel processes: each quantizes to its own file and renames it
      // into place (atomic), so no test reads a file another is still writing.
      const fs::path target = folder / concat("stories260K-", type, ".gguf");
      const fs::path partial = folder / concat("stories260K-", type, "-", getpid(), ".gguf");
      const std::string command = concat("'", llama_quantize_path().string(), "' '", source.string(), "' '",
                                         partial.string(), "' ", type, " > '", partial.string(), ".log' 2>&1");
      ASSERT_EQ(std::system(command.c_str()), 0) << command;
      fs::remove(partial.string() + ".log");
      fs::rename(partial, target);
      files_.push_back(target);
    }
    fs::remove(source);
  }

  // Each sequence's last-position logits from both engines; returns max |diff| / max |logit|.
  double relative_logit_diff(const LlamaModel& model, const fs::path& gguf) const {
    const std::vector<std::vector<int32_t>> sequences{tokenizer_->encode("Lily and Tom went to the park", true),
                                                      {model.config().bos_id},
                                                      tokenizer_->encode("The cat sat on the mat and looked at", true)};
    LlamaCppPrefillOptions options;
    options.kv_f32 = true;
    options.runs = 1;
    options.warmup = 0;
    const LlamaCppPrefillResult result = run_llamacpp_prefill(gguf, sequences, options);
    std::vector<int64_t> lengths;
    for (const auto& sequence : sequences) lengths.push_back(static_cast<int64_t>(sequence.size()));
    NestedTensor batch = NestedTensor::from_lengths(lengths, {}, DType::i32);
    int32_t* ids = batch.values().data<int32_t>();
    for (const auto& sequence : sequences) ids = std::copy(sequence.begin(), sequence.end(), ids);
    const Tensor expected = model.forward(batch, {BatchLayout::nested, /*last_token_logits=*/true, nullptr});
    EXPECT_EQ(result.last_logits.size(), static_cast<size_t>(expected.numel()));
    if (result.last_logits.size() != static_cast<size_t>(expected.numel())) return 1.0;
    double scale = 0.0;
    for (int64_t i = 0; i < expected.numel(); ++i) scale = std::max(scale, std::fabs(double{expected.data<float>()[i]}));
    return testing::max_abs_diff(result.last_logits.data(), expected.data<float>(), expected.numel()) / scale;
  }

  // llama.cpp's greedy ids from `prompt` (f32 K/V cache, as jagged's).
  static std::vector<int32_t> llamacpp_greedy(const fs::path& gguf, const std::vector<int32_t>& prompt, int steps) {
    LlamaCppDecodeOptions options;
    options.kv_f32 = true;
    options.return_ids = true;
    const LlamaCppDecodeResult result = run_llamacpp_decode(gguf, {prompt}, {steps}, options);
    return result.generated_ids.size() == 1 ? result.generated_ids[0] : std::vector<int32_t>();
  }

  std::vector<int32_t> jagged_greedy(const LlamaModel& model, const std::vector<int32_t>& prompt, int steps) const {
    GenerateOptions options;
    options.steps = steps;
    options.stop_at_eos = false;
    return generate(model, {prompt}, options)[0];
  }

  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<fs::path> files_;  // Q8_0, Q4_K_M
};

size_t count_type(const std::vector<ops::WeightType>& types, ops::WeightType type) {
  return static_cast<size_t>(std::count(types.begin(), types.end(), type));
}

TEST_F(QuantizedStories260K, Q8_0KeptQuantizedMatchesLlamaCpp) {
  const LlamaModel model = load_llama_model(files_[0]);
  // Dimension 64 rows are Q8_0; ffn_down's rows of 172 values (not a multiple of 32) fall back to F16, read as f32.
  const std::vector<ops::WeightType> types = model.projection_types();
  EXPECT_EQ(count_type(types, ops::WeightType::q8_0), 3u * 5u + 1u)
      << "qkv, output and gate_up of 5 layers, and the LM head (tied to the Q8_0 embedding table)";
  const double diff = relative_logit_diff(model, files_[0]);
  // Both engines round the activations to Q8_0 blocks for the Q8_0 dot products where the CPU has AVX512-VNNI
  // (jagged's f32 path, JAGGED_Q8_ACTIVATIONS=f32, keeps them f32); llama.cpp's attention goes through f16 and
  // its ffn_down (F16 in the file) rounds the activations to f16: measured 1.2% of the largest logit with either
  // jagged path (1.21% int8, 1.18% f32: the other differences dominate). A wrong block decode gives differences
  // of the order of the logits themselves.
  EXPECT_LE(diff, 3e-2) << "max abs diff / max logit";
  std::cout << "Q8_0: max |logit diff| / max |logit| = " << diff << "\n";

  const std::vector<int32_t> theirs = llamacpp_greedy(files_[0], {model.config().bos_id}, 100);
  EXPECT_EQ(theirs, jagged_greedy(model, {model.config().bos_id}, 100))
      << "llama.cpp wrote: " << tokenizer_->decode(theirs);
}

// The decode benchmark reports the projections' types as they ran, not the --dtype of the load (f32 for a file:
// keep its types): it once said "weights f32, linear path: f32-fma" for this file.
TEST_F(QuantizedStories260K, DecodeBenchReportsTheFilesTypes) {
  const LlamaModel model = load_llama_model(files_[0]);
  DecodeBenchOptions options;
  options.concurrency = {1};
  options.min_prompt = options.max_prompt = 4;
  options.min_new = options.max_new = 2;
  options.padded = false;
  options.step_probe = false;
  const DecodeBenchReport report = run_decode_bench(model, options);
  EXPECT_EQ(report.weights, "f32") << "the --dtype asked";
  EXPECT_EQ(report.projection_types.find("q8_0 x16 ("), 0u) << report.projection_types;
  EXPECT_NE(report.projection_types.find(", f32 x5 (f32-fma"), std::string::npos) << report.projection_types;
}

TEST_F(QuantizedStories260K, Q4_K_MKeptQuantizedMatchesLlamaCpp) {
  const LlamaModel model = load_llama_model(files_[1]);
  // What llama-quantize writes for Q4_K_M on rows of 64 values (not a multiple of 256): Q4_K falls back to Q5_0,
  // Q6_K (attn_v of some layers, the tied output) to Q8_0, and ffn_down's rows of 172 to F16 (read as f32). A
  // fused QKV whose parts differ in type (Q5_0 q/k, Q8_0 v) keeps each part's type.
  const std::vector<ops::WeightType> types = model.projection_types();
  EXPECT_EQ(count_type(types, ops::WeightType::f32), 5u) << "only ffn_down (F16 in the file)";
  EXPECT_GE(count_type(types, ops::WeightType::q5_0), 2u * 5u) << "attn_output and gate_up of 5 layers";
  EXPECT_EQ(types.back(), ops::WeightType::q8_0) << "the LM head, tied to the embedding table (Q6_K -> Q8_0)";
  const double diff = relative_logit_diff(model, files_[1]);
  // Measured 1.3% (the same activation rounding as for Q8_0 is llama.cpp's only difference: same weights).
  EXPECT_LE(diff, 3e-2) << "max abs diff / max logit";
  std::cout << "Q4_K_M: max |logit diff| / max |logit| = " << diff << "\n";

  // Greedy text: reported, not asserted. Measured: equal for the first 96 tokens of 100; llama.cpp's Q8_0
  // rounding of the activations (jagged keeps them f32) moves a close call among the Q5_0 weights' logits.
  const std::vector<int32_t> theirs = llamacpp_greedy(files_[1], {model.config().bos_id}, 100);
  const std::vector<int32_t> ours = jagged_greedy(model, {model.config().bos_id}, 100);
  ASSERT_EQ(theirs.size(), ours.size());
  const auto mismatch = std::mismatch(ours.begin(), ours.end(), theirs.begin());
  std::cout << "Q4_K_M: greedy tokens equal for the first " << (mismatch.first - ours.begin()) << " of 100\n";
}

}  // namespace
}  // namespace jagged
