// `jagged generate` and `jagged bench --decode` from the outside: the engine's text streamed on stdout, the JSON
// per request, seeded sampling, stop strings, log-probabilities, the decode report's counts, and bad input that
// ends in a clear message and exit code 1.
#include <nlohmann/json.hpp>

#include <numeric>
#include <sstream>

#include "testing/cli.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

using testing::CliResult;

class GenerateCli : public testing::CliTest {
 protected:
  static std::filesystem::path model_dir() { return testing::shared_dir() / "models" / "stories260K"; }
  static std::string model() { return (model_dir() / "stories260K.bin").string(); }
  std::string json_path() const { return (directory_ / "out.json").string(); }
  nlohmann::json read_json() const { return nlohmann::json::parse(testing::read_text(json_path())); }
};

TEST_F(GenerateCli, GreedyFromBosStreamsLlama2csText) {
  JAGGED_REQUIRE_PATH(model_dir() / "stories260K.bin");
  const CliResult result = run(concat("generate --model ", model(), " -n 200 -p '' --json ", json_path()));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const std::string expected = testing::read_text(model_dir() / "expected_greedy_200.txt");
  EXPECT_EQ(result.out, expected + "\n");
  EXPECT_EQ(result.err, "");  // finished by length: nothing on stderr
  const nlohmann::json json = read_json();
  ASSERT_EQ(json["requests"].size(), 1u);
  const nlohmann::json& request = json["requests"][0];
  EXPECT_EQ(request["prompt_tokens"], 1);  // BOS alone
  EXPECT_EQ(request["generated_tokens"], 200);
  EXPECT_EQ(request["tokens"].size(), 200u);
  EXPECT_EQ(request["text"], expected);
  EXPECT_EQ(request["finish_reason"], "length");
  ASSERT_EQ(request["token_latencies_s"].size(), 200u);
  EXPECT_DOUBLE_EQ(request["token_latencies_s"][0].get<double>(), request["time_to_first_token_s"].get<double>());
  for (const auto& latency : request["token_latencies_s"]) EXPECT_GE(latency.get<double>(), 0.0);
}

TEST_F(GenerateCli, SeveralPromptsPrintIndexedLinesAndJson) {
  JAGGED_REQUIRE_PATH(model_dir() / "stories260K.bin");
  const auto prompts = write_file("prompts.txt", "Once upon a time\nThe cat\n\nLily and Tom went to the park\n");
  const CliResult result = run(concat("generate --model ", model(), " --prompts ", prompts.string(),
                                      " -p 'The dog' -n 24 --max-batch-tokens 16 --json ", json_path()));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json json = read_json();
  ASSERT_EQ(json["requests"].size(), 5u);
  // Each request's printed lines, joined, are its prompt and its generated text.
  std::vector<std::string> printed(5);
  std::istringstream lines(result.out);
  for (std::string line; std::getline(lines, line);) {
    ASSERT_EQ(line[0], '[') << line;
    const size_t close = line.find("] ");
    ASSERT_NE(close, std::string::npos) << line;
    const size_t index = std::stoul(line.substr(1, close - 1));
    ASSERT_LT(index, 5u) << line;
    if (!printed[index].empty()) printed[index] += '\n';
    printed[index].append(line, close + 2);
  }
  const std::vector<std::string> prompt_texts{"The dog", "Once upon a time", "The cat", "", "Lily and Tom went to the park"};
  for (size_t i = 0; i < 5; ++i) {
    const nlohmann::json& request = json["requests"][i];
    EXPECT_EQ(request["index"], i);
    EXPECT_EQ(request["prompt"], prompt_texts[i]);
    EXPECT_GE(request["prompt_tokens"].get<int>(), 1);
    const size_t generated = request["generated_tokens"].get<size_t>();
    EXPECT_EQ(request["tokens"].size(), generated);
    EXPECT_EQ(request["token_latencies_s"].size(), generated);
    const std::string finish = request["finish_reason"];
    if (finish == "length") EXPECT_EQ(generated, 24u);
    else EXPECT_EQ(finish, "stop");  // EOS
    EXPECT_EQ(printed[i], prompt_texts[i] + request["text"].get<std::string>()) << i;
  }
  EXPECT_GT(json["engine"]["steps"].get<int>(), 24);  // max_batch_tokens 16 chunks the prompts' prefill
}

TEST_F(GenerateCli, SeededSamplingIsReproducibleAndSeedsDiffer) {
  JAGGED_REQUIRE_PATH(model_dir() / "stories260K.bin");
  const std::string base = concat("generate --model ", model(), " -n 60 -p 'Once upon a time' -p 'Once upon a time' ",
                                  "--temp 1.0 --top-k 40 --top-p 0.95 --min-p 0.02 --repetition-penalty 1.1 ",
                                  "--presence-penalty 0.2 --frequency-penalty 0.1 --ignore-eos --json ", json_path());
  const CliResult first = run(base + " --seed 7");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const nlohmann::json first_json = read_json();
  const CliResult again = run(base + " --seed 7");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, first.out);
  EXPECT_EQ(read_json()["requests"][0]["tokens"], first_json["requests"][0]["tokens"]);
  // The same prompt twice: request i samples with seed + i, so the two differ; another seed differs too.
  EXPECT_NE(first_json["requests"][0]["tokens"], first_json["requests"][1]["tokens"]);
  const CliResult other = run(base + " --seed 8");
  ASSERT_EQ(other.exit_code, 0) << other.err;
  EXPECT_NE(read_json()["requests"][0]["tokens"], first_json["requests"][0]["tokens"]);
  EXPECT_EQ(read_json()["requests"][0]["tokens"], first_json["requests"][1]["tokens"]);  // seed 8 = 7 + 1
}

TEST_F(GenerateCli, StopStringEndsTheRequestAndIsReported) {
  JAGGED_REQUIRE_PATH(model_dir() / "stories260K.bin");
  const std::string expected = testing::read_text(model_dir() / "expected_greedy_200.txt");
  const size_t stop_at = expected.find("Lily");
  ASSERT_NE(stop_at, std::string::npos);
  const CliResult result = run(concat("generate --model ", model(), " -n 200 -p '' --stop Lily --json ", json_path()));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, expected.substr(0, stop_at) + "\n");
  EXPECT_NE(result.err.find("finished: stop"), std::string::npos) << result.err;
  EXPECT_EQ(read_json()["requests"][0]["finish_reason"], "stop");
}

TEST_F(GenerateCli, LogprobsListTheChosenTokenAndTheTopK) {
  JAGGED_REQUIRE_PATH(model_dir() / "stories260K.bin");
  const CliResult result =
      run(concat("generate --model ", model(), " -n 12 -p 'The cat' --logprobs 3 --json ", json_path()));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json request = read_json()["requests"][0];
  ASSERT_EQ(request["logprobs"].size(), request["tokens"].size());
  for (size_t t = 0; t < request["tokens"].size(); ++t) {
    const nlohmann::json& entry = request["logprobs"][t];
    EXPECT_EQ(entry["token"], request["tokens"][t]);
    EXPECT_LE(entry["logprob"].get<double>(), 0.0);
    ASSERT_EQ(entry["top"].size(), 3u);
    EXPECT_EQ(entry["top"][0]["token"], entry["token"]);  // greedy picks the most likely
    EXPECT_GE(entry["top"][0]["logprob"].get<double>(), entry["top"][1]["logprob"].get<double>());
    EXPECT_GE(entry["top"][1]["logprob"].get<double>(), entry["top"][2]["logprob"].get<double>());
  }
}

TEST_F(GenerateCli, SyntheticModelPrintsIds) {
  const CliResult result = run("generate --model synthetic:tiny -n 5 --ignore-eos");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  std::istringstream ids(result.out);
  int count = 0;
  for (int id; ids >> id; ++count) EXPECT_TRUE(id >= 0 && id < 256) << id;
  EXPECT_EQ(count, 5) << result.out;
}

TEST_F(GenerateCli, Bf16KvCacheGeneratesAndOtherTypesAreRefused) {
  JAGGED_REQUIRE_PATH(model_dir() / "stories260K.bin");
  const CliResult result = run(concat("generate --model ", model(), " -n 30 -p 'Once upon a time' --kv-dtype bf16"));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out.rfind("Once upon a time", 0), 0u) << result.out;
  EXPECT_GT(result.out.size(), std::string("Once upon a time").size() + 20) << result.out;
  // jagged run takes the engine's path: the same text as generate with the same cache type, which for this
  // prompt leaves the f32 cache's text within 250 tokens (so the option cannot be ignored unnoticed).
  const std::string tom = concat(" --model ", model(), " -n 250 -p 'Tom had a'");
  const CliResult run_bf16 = run(concat("run", tom, " --kv-dtype bf16"));
  const CliResult generate_bf16 = run(concat("generate", tom, " --kv-dtype bf16"));
  const CliResult run_f32 = run(concat("run", tom));
  ASSERT_EQ(run_bf16.exit_code, 0) << run_bf16.err;
  EXPECT_EQ(run_bf16.out, generate_bf16.out);
  EXPECT_NE(run_bf16.out, run_f32.out);
  const CliResult bad = run("generate --model synthetic:tiny --kv-dtype q8_0");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("--kv-dtype"), std::string::npos) << bad.err;
}

// --dtype bf16: generate and run (one engine path) give the same text, which leaves f32's text after ~430 chars.
TEST_F(GenerateCli, Bf16WeightsMatchRunAndDifferFromF32) {
  JAGGED_REQUIRE_PATH(model_dir() / "stories260K.bin");
  const std::string prompt = " -n 200 -p 'Once upon a time'";
  const CliResult bf16 = run(concat("generate --model ", model(), prompt, " --dtype bf16"));
  const CliResult via_run = run(concat("run --model ", model(), prompt, " --dtype bf16"));
  const CliResult f32 = run(concat("generate --model ", model(), prompt));
  ASSERT_EQ(bf16.exit_code, 0) << bf16.err;
  ASSERT_EQ(via_run.exit_code, 0) << via_run.err;
  ASSERT_EQ(f32.exit_code, 0) << f32.err;
  EXPECT_EQ(bf16.out, via_run.out);
  EXPECT_NE(bf16.out, f32.out);
  EXPECT_EQ(bf16.out.substr(0, 200), f32.out.substr(0, 200));
  const CliResult bad = run("generate --model synthetic:tiny --dtype f8");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("f8"), std::string::npos) << bad.err;
}

TEST_F(GenerateCli, BadInputFailsClearly) {
  struct Case {
    std::string arguments;
    std::string message;
  };
  const std::vector<Case> cases{
      {"generate --model synthetic:tiny --temp -1", "temperature"},
      {"generate --model synthetic:tiny --temp 1 --top-p 2", "top_p"},
      {"generate --model synthetic:tiny --top-k -2", "top_k"},
      {"generate --model synthetic:tiny --min-p 3", "min_p"},
      {"generate --model synthetic:tiny --repetition-penalty 0", "repetition_penalty"},
      {"generate --model synthetic:tiny -n 0", "-n"},
      {"generate --model synthetic:tiny -p hello", "tokenizer"},
      {"generate --model synthetic:tiny --prompts /no/such/prompts.txt", "cannot open"},
      {"generate --model synthetic:tiny --json /proc/version/out.json", "out.json"},
      {"generate --model /no/such/model.bin", "no/such/model.bin"},
  };
  for (const Case& test : cases) {
    const CliResult result = run(test.arguments);
    EXPECT_EQ(result.exit_code, 1) << test.arguments << "\n" << result.err;
    EXPECT_NE(result.err.find(test.message), std::string::npos) << test.arguments << "\n" << result.err;
  }
}

int64_t sum(const nlohmann::json& values) {
  int64_t total = 0;
  for (const auto& value : values) total += value.get<int64_t>();
  return total;
}

int64_t largest(const nlohmann::json& values) {
  int64_t most = 0;
  for (const auto& value : values) most = std::max(most, value.get<int64_t>());
  return most;
}

TEST_F(GenerateCli, DecodeBenchReportsEveryRunAndItsCountsAddUp) {
  const CliResult result = run(concat("bench --decode --model synthetic:tiny --threads 1 --concurrency 1,4 ",
                                      "--min-prompt 10 --max-prompt 40 --min-new 16 --max-new 30 --max-batch-tokens 32 ",
                                      "--json ", json_path()));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("continuous / padded static"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("step / stream"), std::string::npos) << result.out;
  const nlohmann::json report = read_json();
  EXPECT_EQ(report["benchmark"], "decode");
  EXPECT_NE(report["command"].get<std::string>().find("--concurrency 1,4"), std::string::npos);
  ASSERT_EQ(report["points"].size(), 2u);
  for (size_t p = 0; p < 2; ++p) {
    const nlohmann::json& point = report["points"][p];
    const int64_t n = p == 0 ? 1 : 4;
    EXPECT_EQ(point["concurrency"], n);
    ASSERT_EQ(point["prompt_lengths"].size(), static_cast<size_t>(n));
    ASSERT_EQ(point["new_tokens"].size(), static_cast<size_t>(n));
    for (const auto& length : point["prompt_lengths"]) EXPECT_TRUE(length >= 10 && length <= 40) << length;
    for (const auto& length : point["new_tokens"]) EXPECT_TRUE(length >= 16 && length <= 30) << length;
    const int64_t prompt_tokens = sum(point["prompt_lengths"]);
    const int64_t new_tokens = sum(point["new_tokens"]);

    const nlohmann::json& continuous = point["continuous"];
    EXPECT_EQ(continuous["num_requests"], n);
    EXPECT_EQ(continuous["preemptions"], 0);
    EXPECT_EQ(continuous["prompt_tokens"], prompt_tokens);
    EXPECT_EQ(continuous["generated_tokens"], new_tokens);
    EXPECT_EQ(continuous["useful_tokens"], new_tokens);
    EXPECT_LE(continuous["decode_tokens"].get<int64_t>(), new_tokens);
    EXPECT_EQ(continuous["time_to_first_token_s"]["count"], n);
    EXPECT_EQ(continuous["inter_token_s"]["count"], new_tokens - n);
    EXPECT_LE(continuous["time_to_first_token_s"]["p50"].get<double>(),
              continuous["time_to_first_token_s"]["p99"].get<double>());
    EXPECT_GT(continuous["tokens_per_second"].get<double>(), 0.0);
    EXPECT_GT(continuous["kv_peak_bytes"].get<int64_t>(), 0);
    EXPECT_LE(continuous["kv_peak_bytes"].get<int64_t>(), continuous["kv_cache_bytes"].get<int64_t>());
    // The KV cache holds at least the tokens each request ever had at once.
    EXPECT_GE(continuous["kv_peak_bytes"].get<int64_t>(),
              report["kv_bytes_per_token"].get<int64_t>() * (largest(point["prompt_lengths"]) + 1));

    const nlohmann::json& padded = point["padded_static"];
    EXPECT_EQ(padded["prompt_tokens"], n * largest(point["prompt_lengths"]));
    EXPECT_EQ(padded["generated_tokens"], n * largest(point["new_tokens"]));
    EXPECT_EQ(padded["useful_tokens"], new_tokens);
    EXPECT_EQ(padded["inter_token_s"]["count"], n * (largest(point["new_tokens"]) - 1));
    EXPECT_DOUBLE_EQ(point["continuous_over_padded"].get<double>(),
                     continuous["tokens_per_second"].get<double>() / padded["tokens_per_second"].get<double>());
  }
  const nlohmann::json& step = report["decode_step"];
  EXPECT_GT(step["step_seconds"].get<double>(), 0.0);
  EXPECT_GT(step["bandwidth_bytes_per_second"].get<double>(), 0.0);
  EXPECT_GT(step["weight_bytes"].get<int64_t>(), 0);
  EXPECT_DOUBLE_EQ(step["stream_weights_seconds"].get<double>(),
                   step["weight_bytes"].get<double>() / step["bandwidth_bytes_per_second"].get<double>());
}

TEST_F(GenerateCli, DecodeBenchFixedWorkloadAndRate) {
  const CliResult result = run(concat("bench --decode --model synthetic:tiny --threads 1 --concurrency 3 ",
                                      "--prompt-len 12 --new-tokens 16 --rate 200 --no-padded --no-step-probe --json ",
                                      json_path()));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json report = read_json();
  ASSERT_EQ(report["points"].size(), 1u);
  const nlohmann::json& point = report["points"][0];
  EXPECT_EQ(point["prompt_lengths"], nlohmann::json::parse("[12, 12, 12]"));
  EXPECT_EQ(point["new_tokens"], nlohmann::json::parse("[16, 16, 16]"));
  EXPECT_EQ(point["continuous"]["generated_tokens"], 48);
  EXPECT_FALSE(point.contains("padded_static"));
  EXPECT_FALSE(report.contains("decode_step"));
  EXPECT_EQ(report["workload"]["rate_requests_per_second"], 200.0);
  EXPECT_EQ(report["weights"], "f32");
}

// --dtype reaches the decode benchmark's model (it once loaded f32 whatever --dtype said).
TEST_F(GenerateCli, DecodeBenchLoadsTheWeightTypeAsked) {
  const CliResult result = run(concat("bench --decode --model synthetic:tiny --dtype bf16 --threads 1 --concurrency 2 ",
                                      "--prompt-len 8 --new-tokens 4 --no-padded --no-step-probe --json ", json_path()));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("(weights bf16 x"), std::string::npos) << result.out;
  const nlohmann::json report = read_json();
  EXPECT_EQ(report["weights"], "bf16");
  EXPECT_EQ(report["projection_types"].get<std::string>().find("bf16 x"), 0u) << report["projection_types"];
  EXPECT_FALSE(report["linear_path"].get<std::string>().empty());
  EXPECT_NE(report["command"].get<std::string>().find("--dtype bf16"), std::string::npos);
}

TEST_F(GenerateCli, DecodeBenchRejectsBadOptions) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"bench --decode --model synthetic:tiny --concurrency 0", "concurrency"},
      {"bench --decode --model synthetic:tiny --min-prompt 50 --max-prompt 10", "prompt length"},
      {"bench --decode --model synthetic:tiny --max-prompt 400 --max-new 200", "context length"},
      {"bench --decode --model synthetic:tiny --rate -1", "rate"},
      {"bench --decode --model synthetic:tiny --json /proc/version/r.json", "r.json"},
  };
  for (const auto& [arguments, message] : cases) {
    const CliResult result = run(arguments);
    EXPECT_EQ(result.exit_code, 1) << arguments << "\n" << result.err;
    EXPECT_NE(result.err.find(message), std::string::npos) << arguments << "\n" << result.err;
  }
}

}  // namespace
}  // namespace jagged
