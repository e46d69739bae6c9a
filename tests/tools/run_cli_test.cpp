// `jagged run`, `jagged parity` and `jagged bench` from the outside: real output, and bad input that must end
// in a clear message and a non-zero exit before any work, never a crash.
#include <nlohmann/json.hpp>

#include "testing/cli.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

using testing::CliResult;

class JaggedCli : public testing::CliTest {};

TEST_F(JaggedCli, RunContinuesStories260KPromptsInOneBatch) {
  const auto model = testing::shared_dir() / "models" / "stories260K" / "stories260K.bin";
  JAGGED_REQUIRE_PATH(model);
  const CliResult result = run(concat("run --model ", model.string(), " -n 30 -p 'Once upon a time' -p ''"));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const std::string expected = testing::read_text(model.parent_path() / "expected_greedy_200.txt");
  std::istringstream lines(result.out);
  std::string first, second;
  std::getline(lines, first);
  std::getline(lines, second);
  EXPECT_EQ(first.rfind("Once upon a time", 0), 0u) << first;
  EXPECT_EQ(expected.rfind(second, 0), 0u) << "the empty prompt starts from BOS: " << second;
  EXPECT_GT(second.size(), 60u);
}

TEST_F(JaggedCli, ParityPassesOnASyntheticModel) {
  const CliResult result = run("parity --model synthetic:tiny --batch 6 --min-len 1 --max-len 70 --seed 3");
  ASSERT_EQ(result.exit_code, 0) << result.err << result.out;
  EXPECT_NE(result.out.find("PASS"), std::string::npos) << result.out;
}

// Every storage type: alone vs nested bit-identical; padded within the tolerance its activation rounding sets
// (int8 blocks on VNNI, bf16) or 1e-4.
TEST_F(JaggedCli, ParityPassesForEveryWeightType) {
  for (const char* dtype : {"bf16", "q8_0", "q4_0"}) {
    const CliResult result =
        run(concat("parity --model synthetic:tiny --batch 6 --min-len 1 --max-len 70 --seed 3 --dtype ", dtype));
    ASSERT_EQ(result.exit_code, 0) << dtype << result.err << result.out;
    EXPECT_NE(result.out.find("alone: bit-identical)"), std::string::npos) << result.out;
  }
}

TEST_F(JaggedCli, ParityFailsAboveAnImpossibleTolerance) {
  const CliResult result = run("parity --model synthetic:tiny --batch 6 --max-len 70 --tol 1e-30");
  EXPECT_EQ(result.exit_code, 1) << result.out;
  EXPECT_NE(result.out.find("FAIL"), std::string::npos) << result.out;
}

TEST_F(JaggedCli, BenchWritesJsonAndPlot) {
  const CliResult result = run(concat("bench --model synthetic:tiny --dist uniform --batch 5 --max-len 40 --runs 2 ",
                                      "--warmup 0 --json ", (directory_ / "r.json").string(), " --plot ",
                                      (directory_ / "r.svg").string()));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto report = nlohmann::json::parse(testing::read_text(directory_ / "r.json"));
  EXPECT_EQ(report["lengths"].size(), 5u);
  EXPECT_EQ(report["nested"]["run_seconds"].size(), 2u);
  EXPECT_GT(report["padded"]["peak_activation_bytes"].get<int64_t>(), 0);
  EXPECT_GE(report["ideal_time_ratio"].get<double>(), 1.0);
  EXPECT_LE(report["parity"]["max_rel"].get<double>(), 1e-4);
  for (const char* stage : {"embedding", "attention", "mlp", "lm_head"}) {
    EXPECT_TRUE(report["nested"]["stage_median_seconds"].contains(stage)) << stage;
  }
  // The targets are checked in the report (and printed): time and memory against the ideal ratios.
  ASSERT_EQ(report["targets"].size(), 2u) << report["targets"];
  const nlohmann::json& time_target = report["targets"][0];
  EXPECT_DOUBLE_EQ(time_target["measured"].get<double>(), report["time_ratio_padded_over_nested"].get<double>());
  EXPECT_DOUBLE_EQ(time_target["goal"].get<double>(), 0.9 * report["ideal_time_ratio"].get<double>());
  EXPECT_EQ(time_target["met"].get<bool>(), time_target["measured"].get<double>() >= time_target["goal"].get<double>());
  EXPECT_NE(result.out.find("target: padded/nested time"), std::string::npos) << result.out;
  const std::string svg = testing::read_text(directory_ / "r.svg");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
}

TEST_F(JaggedCli, BenchTakesLengthFilesAndCorpora) {
  const auto lengths = write_file("lengths.txt", "3 9 1\n27\n");
  CliResult result = run(concat("bench --model synthetic:tiny --runs 1 --warmup 0 --dist lengths:", lengths.string(),
                                " --json ", (directory_ / "r.json").string()));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(nlohmann::json::parse(testing::read_text(directory_ / "r.json"))["lengths"],
            nlohmann::json::parse("[3, 9, 1, 27]"));
  // Without a tokenizer, a corpus cannot be tokenised: a clear error.
  const auto corpus = write_file("corpus.txt", "one two three\n%\nfour five\n");
  result = run(concat("bench --model synthetic:tiny --dist corpus:", corpus.string()));
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("tokenizer"), std::string::npos) << result.err;
}

TEST_F(JaggedCli, BadInputFailsClearlyBeforeAnyWork) {
  struct Case {
    std::string arguments;
    std::string message;  // a piece of the error the user sees
  };
  const std::vector<Case> cases{
      {"bench --model synthetic:tiny --dist zipf", "unknown length distribution"},
      {"bench --model synthetic:tiny --dist uniform --batch 0", "--batch"},
      {"bench --model synthetic:tiny --dist uniform --min-len 50 --max-len 10", "--min-len"},
      {"bench --model synthetic:tiny --dist uniform --max-len 5000", "context length"},
      {"bench --model synthetic:tiny --json /dev/null/r.json", "--json"},  // a folder that cannot be made
      {"bench --model synthetic:tiny --runs 0", "--runs"},
      {"bench --model synthetic:no-such-model", "unknown synthetic model"},
      {"bench --model /no/such/model.gguf", "no/such/model.gguf"},
      {"bench --model synthetic:tiny --dist lengths:/no/such/file", "cannot open"},
      {"parity --model synthetic:tiny --max-len 100000", "context length"},
      {"run --model synthetic:tiny -p hello", "tokenizer"},
      {"run --model synthetic:tiny -n -3", "steps"},
  };
  for (const Case& test : cases) {
    const CliResult result = run(test.arguments);
    EXPECT_EQ(result.exit_code, 1) << test.arguments << "\n" << result.err;
    EXPECT_NE(result.err.find(test.message), std::string::npos) << test.arguments << "\n" << result.err;
  }
}

TEST_F(JaggedCli, RunRejectsPromptsPastTheContext) {
  const auto model = testing::shared_dir() / "models" / "stories260K" / "stories260K.bin";
  JAGGED_REQUIRE_PATH(model);
  std::string long_prompt;
  for (int i = 0; i < 400; ++i) long_prompt += "Lily went to the park. ";
  const auto prompts = write_file("prompts.txt", long_prompt + "\n");
  const CliResult result = run(concat("run --model ", model.string(), " --prompts ", prompts.string()));
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("context length"), std::string::npos) << result.err;
}

// Asked for more tokens than the context leaves: the output is what fits, and stderr says why it is shorter.
TEST_F(JaggedCli, RunSaysWhenTheContextCutsASequenceShort) {
  const auto model = testing::shared_dir() / "models" / "stories260K" / "stories260K.bin";
  JAGGED_REQUIRE_PATH(model);
  std::string long_prompt;
  for (int i = 0; i < 40; ++i) long_prompt += "Lily went to the park. ";
  const auto prompts = write_file("prompts.txt", long_prompt + "\nOnce\n");
  const CliResult result = run(concat("run --model ", model.string(), " --prompts ", prompts.string(), " -n 600"));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("[0] finished: context"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("of 600 tokens"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace jagged
