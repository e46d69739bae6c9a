// `jagged bench` on BERT-family encoders: the family follows the model, the FLOPs follow the shapes (bidirectional
// attention), the comparisons with PyTorch and ONNX Runtime agree with jagged's embeddings, and a missing piece of
// --compare-onnx is a clear error before any work.
#include <cstdlib>
#include <optional>

#include <nlohmann/json.hpp>

#include "jagged/bert.h"
#include "testing/cli.h"
#include "testing/scoped_env.h"

namespace jagged {
namespace {

using testing::CliResult;
namespace fs = std::filesystem;

class BenchEncoderCli : public testing::CliTest {
 protected:
  nlohmann::json bench_json(const std::string& arguments) {
    const fs::path json = directory_ / "r.json";
    const CliResult result = run(concat("bench ", arguments, " --json ", json.string()));
    EXPECT_EQ(result.exit_code, 0) << arguments << "\n" << result.err << result.out;
    if (result.exit_code != 0) return nlohmann::json::object();
    return nlohmann::json::parse(testing::read_text(json));
  }
};

bool succeeds(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()) == 0; }

// FLOPs written per sequence, independently of the CLI's formula: per layer 2 * rows * (4 dim^2 + 2 dim ffn) for
// the projections and MLP, 4 * dim per (query, key) pair for scores and values.
double expected_flops(const BertConfig& c, const std::vector<int64_t>& lengths, bool padded) {
  int64_t longest = 0;
  for (const int64_t length : lengths) longest = std::max(longest, length);
  const double dim = static_cast<double>(c.model_dim), ffn = static_cast<double>(c.ffn_dim);
  double flops = 0;
  for (const int64_t real : lengths) {
    const double length = static_cast<double>(padded ? longest : real);
    for (int layer = 0; layer < c.num_layers; ++layer) {
      flops += 2 * length * (3 * dim * dim) + 2 * length * dim * dim + 2 * length * dim * ffn * 2;
      flops += length * length * 4 * dim;
    }
  }
  return flops;
}

TEST_F(BenchEncoderCli, SyntheticEncoderBenchesEmbeddingsWithShapeFlops) {
  const auto lengths = write_file("lengths.txt", "3 9 1 27\n");
  const nlohmann::json report =
      bench_json(concat("--model synthetic:bert-tiny --runs 2 --warmup 0 --dist lengths:", lengths.string()));
  ASSERT_FALSE(report.empty());
  const std::vector<int64_t> expected_lengths{3, 9, 1, 27};
  EXPECT_EQ(report["lengths"].get<std::vector<int64_t>>(), expected_lengths);
  const BertConfig config = BertModel::synthetic("bert-tiny").config();
  const double nested = expected_flops(config, expected_lengths, false);
  const double padded = expected_flops(config, expected_lengths, true);
  EXPECT_DOUBLE_EQ(report["real_flops"].get<double>(), nested);
  EXPECT_DOUBLE_EQ(report["padded"]["flops"].get<double>(), padded);
  EXPECT_DOUBLE_EQ(report["ideal_time_ratio"].get<double>(), padded / nested);
  for (const char* stage : {"embedding", "qkv_proj", "attention", "mlp", "pooling"}) {
    EXPECT_TRUE(report["nested"]["stage_median_seconds"].contains(stage)) << stage;
  }
  EXPECT_FALSE(report["nested"]["stage_median_seconds"].contains("lm_head"));
  // The compared output is the [num_seqs, model_dim] embeddings; nested and padded agree to fp32 rounding.
  EXPECT_LE(report["parity"]["max_rel"].get<double>(), 1e-5);
  const int64_t outputs = report["parity"]["exactly_equal"].get<int64_t>() +
                          [&] {
                            int64_t sum = 0;
                            for (const auto& count : report["parity"]["histogram_counts"]) sum += count.get<int64_t>();
                            return sum;
                          }();
  EXPECT_EQ(outputs, 4 * config.model_dim);
  EXPECT_GT(report["padded"]["peak_activation_bytes"].get<int64_t>(),
            report["nested"]["peak_activation_bytes"].get<int64_t>());
}

TEST_F(BenchEncoderCli, ModelDirectoriesBenchTheirOwnFamily) {
  const fs::path fixtures = fs::path(JAGGED_SOURCE_DIR) / "tests" / "fixtures";
  const std::string workload = "--dist uniform --batch 3 --min-len 2 --max-len 30 --runs 1 --warmup 0";
  const nlohmann::json encoder = bench_json(concat("--model ", (fixtures / "bert-tiny").string(), " ", workload));
  ASSERT_FALSE(encoder.empty());
  EXPECT_TRUE(encoder["nested"]["stage_median_seconds"].contains("pooling"));
  const nlohmann::json decoder = bench_json(concat("--model ", (fixtures / "llama-tiny").string(), " ", workload));
  ASSERT_FALSE(decoder.empty());
  EXPECT_TRUE(decoder["nested"]["stage_median_seconds"].contains("lm_head"));
  EXPECT_FALSE(decoder["nested"]["stage_median_seconds"].contains("pooling"));
}

TEST_F(BenchEncoderCli, CompareOnnxFailsClearlyBeforeAnyWork) {
  auto expect_error = [&](const std::string& arguments, const std::string& message) {
    const CliResult result = run(arguments);
    EXPECT_EQ(result.exit_code, 1) << arguments << "\n" << result.err;
    EXPECT_NE(result.err.find(message), std::string::npos) << arguments << "\n" << result.err;
    EXPECT_EQ(result.out, "") << "work started before the error: " << arguments;
  };
  expect_error("bench --model synthetic:tiny --compare-onnx", "BERT-family encoders only");
  expect_error("bench --model synthetic:no-such-model --compare-onnx", "unknown synthetic model");
  {
    const testing::ScopedEnv no_node("PATH", (directory_ / "empty-path").string());
    expect_error("bench --model synthetic:bert-tiny --compare-onnx", "needs node");
  }
  if (succeeds("node --version")) {
    const testing::ScopedEnv no_package("JAGGED_BENCH_DEPS", (directory_ / "no-deps").string());
    expect_error("bench --model synthetic:bert-tiny --compare-onnx", "onnxruntime-node");
  }
}

TEST_F(BenchEncoderCli, CompareTorchMatchesJaggedsEmbeddingsAndHiddenStates) {
  if (!succeeds("/usr/bin/python3 -c 'import torch'")) GTEST_SKIP() << "no python3-torch (scripts/setup.sh)";
  const nlohmann::json report = bench_json(
      "--model synthetic:bert-tiny --dist uniform --batch 4 --min-len 1 --max-len 24 --runs 1 --warmup 0 "
      "--compare-torch");
  ASSERT_TRUE(report["extra"].contains("torch")) << report.dump();
  const nlohmann::json& torch = report["extra"]["torch"];
  for (const char* path : {"padded_slow", "padded_fast", "nested", "one_by_one"}) {
    EXPECT_GT(torch["paths"][path].value("median_seconds", 0.0), 0.0) << path << ": " << torch["paths"][path];
    EXPECT_GT(torch["jagged_speedup_over"].value(path, 0.0), 0.0) << path;
  }
  EXPECT_EQ(torch["lengths"], report["lengths"]);
  EXPECT_EQ(torch["environment"]["threads"], report["threads"]);
  EXPECT_TRUE(torch["parity_vs_jagged"]["pass"].get<bool>()) << torch["parity_vs_jagged"];
  EXPECT_TRUE(torch["hidden_states_parity_vs_jagged"]["pass"].get<bool>()) << torch["hidden_states_parity_vs_jagged"];
  // Encoders: the 2.5x over PyTorch's fastest path, checked against the ratio the report computed.
  ASSERT_EQ(torch["targets"].size(), 1u) << torch;
  EXPECT_DOUBLE_EQ(torch["targets"][0]["goal"].get<double>(), 2.5);
  EXPECT_DOUBLE_EQ(torch["targets"][0]["measured"].get<double>(), torch["jagged_speedup_over_fastest"].get<double>());
}

TEST_F(BenchEncoderCli, CompareOnnxMatchesJaggedsEmbeddings) {
  const char* deps_override = std::getenv("JAGGED_BENCH_DEPS");
  const fs::path deps = deps_override != nullptr ? fs::path(deps_override)
                                                 : fs::path(JAGGED_SOURCE_DIR) / "build" / "bench-deps";
  if (!succeeds("node --version") || !fs::exists(deps / "node_modules" / "onnxruntime-node") ||
      !succeeds("/usr/bin/python3 -c 'import torch, onnx'")) {
    GTEST_SKIP() << "ONNX Runtime comparison not installed (scripts/setup_bench.sh)";
  }
  const nlohmann::json report = bench_json(
      "--model synthetic:bert-tiny --dist uniform --batch 4 --min-len 1 --max-len 24 --runs 2 --warmup 1 "
      "--compare-onnx");
  ASSERT_TRUE(report["extra"].contains("onnxruntime")) << report.dump();
  const nlohmann::json& ort = report["extra"]["onnxruntime"];
  for (const char* path : {"padded", "one_by_one"}) {
    EXPECT_EQ(ort["paths"][path]["run_seconds"].size(), 2u) << path;
    EXPECT_GT(ort["jagged_speedup_over"].value(path, 0.0), 0.0) << path;
  }
  EXPECT_EQ(ort["lengths"], report["lengths"]);
  EXPECT_EQ(ort["threads"], report["threads"]);
  EXPECT_EQ(ort["session_options"]["graphOptimizationLevel"], "all");
  EXPECT_GT(ort["onnx_export_seconds"].get<double>(), 0.0);
  EXPECT_TRUE(ort["parity_vs_jagged"]["pass"].get<bool>()) << ort["parity_vs_jagged"];
  // One sequence at a time (no padding) and the padded batch give the same embeddings.
  EXPECT_LE(ort["outputs"]["max_abs_diff_vs_padded"]["one_by_one"].get<double>(), 1e-4);
  // The targets: at least as fast as its fastest path, 2x its padded path.
  ASSERT_EQ(ort["targets"].size(), 2u) << ort;
  EXPECT_DOUBLE_EQ(ort["targets"][0]["goal"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(ort["targets"][1]["goal"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(ort["targets"][1]["measured"].get<double>(), ort["jagged_speedup_over"]["padded"].get<double>());
}

}  // namespace
}  // namespace jagged
