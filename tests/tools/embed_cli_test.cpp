// Smoke tests of `jagged embed` and `jagged classify`: the built binary run on files, its output parsed back.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "testing/cli.h"

namespace jagged {
namespace {

namespace fs = std::filesystem;
using Result = testing::CliResult;

class EmbedCli : public testing::CliTest {
 protected:
  fs::path write_inputs(const std::string& text) { return write_file("inputs.txt", text); }
};

std::vector<std::vector<double>> parse_rows(const std::string& text) {
  std::vector<std::vector<double>> rows;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream values(line);
    std::vector<double> row;
    for (double value; values >> value;) row.push_back(value);
    rows.push_back(std::move(row));
  }
  return rows;
}

double norm(const std::vector<double>& row) {
  double sum = 0.0;
  for (const double value : row) sum += value * value;
  return std::sqrt(sum);
}

TEST_F(EmbedCli, PrintsOneNormalisedEmbeddingPerInput) {
  const fs::path inputs = write_inputs("1 2 3\n5 6 7 8 9\n");  // an empty --ids line is refused (robustness tests)
  const Result result = run(concat("embed --model synthetic:bert-tiny --ids --inputs ", inputs.string()));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto rows = parse_rows(result.out);
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& row : rows) ASSERT_EQ(row.size(), 64u);
  EXPECT_NEAR(norm(rows[0]), 1.0, 64 * FLT_EPSILON);
  EXPECT_NEAR(norm(rows[1]), 1.0, 64 * FLT_EPSILON);
  EXPECT_NE(rows[0], rows[1]);
}

TEST_F(EmbedCli, JsonHoldsTheSameValuesAsText) {
  const fs::path inputs = write_inputs("4 8 15 16 23 42\n7\n");
  const std::string options = concat("embed -m synthetic:bert-tiny --ids --pool max --no-normalize -i ", inputs.string());
  const Result text = run(options);
  const Result json = run(options + " --json");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const auto rows = parse_rows(text.out);
  const nlohmann::json parsed = nlohmann::json::parse(json.out);
  ASSERT_EQ(parsed.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(parsed[i].get<std::vector<double>>(), rows[i]) << i;
  EXPECT_GT(norm(rows[0]), 2.0);  // not normalised
  const Result empty = run(concat("embed -m synthetic:bert-tiny --ids --json -i ", write_inputs("").string()));
  ASSERT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_EQ(nlohmann::json::parse(empty.out), nlohmann::json::array());
}

TEST_F(EmbedCli, ClassifyMatchesThePyTorchReference) {
  const fs::path fixture = fs::path(JAGGED_SOURCE_DIR) / "tests/fixtures/bert-tiny";
  ASSERT_TRUE(fs::exists(fixture / "reference.json"));
  std::ifstream file(fixture / "reference.json");
  const nlohmann::json reference = nlohmann::json::parse(file);
  std::ifstream config_file(fixture / "config.json");
  const nlohmann::json config = nlohmann::json::parse(config_file);
  // The CLI gives every token type 0: use the reference sequences that have no other type.
  std::string lines;
  std::vector<size_t> used;
  for (size_t seq = 0; seq < reference["sequences"].size(); ++seq) {
    const auto types = reference["token_type_ids"][seq].get<std::vector<int>>();
    if (std::count(types.begin(), types.end(), 0) != static_cast<long>(types.size())) continue;
    for (const int id : reference["sequences"][seq].get<std::vector<int>>()) lines += concat(id, " ");
    lines += "\n";
    used.push_back(seq);
  }
  ASSERT_GE(used.size(), 2u);
  const Result result = run(concat("classify --json --ids -m ", fixture.string(), " -i ", write_inputs(lines).string()));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json parsed = nlohmann::json::parse(result.out);
  ASSERT_EQ(parsed.size(), used.size());
  for (size_t i = 0; i < used.size(); ++i) {
    const auto expected = reference["logits"][used[i]].get<std::vector<double>>();
    const auto actual = parsed[i]["logits"].get<std::vector<double>>();
    ASSERT_EQ(actual.size(), expected.size());
    for (size_t label = 0; label < expected.size(); ++label) {
      EXPECT_NEAR(actual[label], expected[label], 128 * FLT_EPSILON) << "input " << i << " label " << label;
    }
    const int64_t best = std::max_element(expected.begin(), expected.end()) - expected.begin();
    EXPECT_EQ(parsed[i]["label_id"].get<int64_t>(), best);
    EXPECT_EQ(parsed[i]["label"].get<std::string>(), config["id2label"][std::to_string(best)].get<std::string>());
  }
}

// The fixture model beside a hand-written WordPiece vocabulary: text inputs must give what their ids give.
TEST_F(EmbedCli, TextInputsAreTokenizedWithClsAndSep) {
  const fs::path fixture = fs::path(JAGGED_SOURCE_DIR) / "tests/fixtures/bert-tiny";
  ASSERT_TRUE(fs::exists(fixture / "model.safetensors"));
  const fs::path model = directory_ / "model";
  fs::create_directories(model);
  fs::copy_file(fixture / "config.json", model / "config.json");
  fs::copy_file(fixture / "model.safetensors", model / "model.safetensors");
  {
    std::ofstream vocab(model / "vocab.txt");
    vocab << "[PAD]\n";
    for (int i = 1; i < 100; ++i) vocab << "[unused" << i << "]\n";
    vocab << "[UNK]\n[CLS]\n[SEP]\n[MASK]\n";  // 100..103
    for (const char* word : {"hello", "world", "the", "cat", "sat", "##s", "on", "mat", ".", ","}) vocab << word << "\n";
    for (int i = 114; i < 200; ++i) vocab << "w" << i << "\n";
  }
  std::string long_text;
  std::string long_ids = "101";
  for (int i = 0; i < 100; ++i) long_text += "the ";  // context 64: keeps [CLS], 62 x "the", [SEP]
  for (int i = 0; i < 62; ++i) long_ids += " 106";
  long_ids += " 102";
  const fs::path text = write_inputs("Hello world.\n\nthe cats sat on the mat\n" + long_text + "\n");
  const fs::path ids = directory_ / "ids.txt";
  std::ofstream(ids) << "101 104 105 112 102\n101 102\n101 106 107 109 108 110 106 111 102\n" << long_ids << "\n";
  for (const char* command : {"embed --pool cls", "classify"}) {
    const Result from_text = run(concat(command, " -m ", model.string(), " -i ", text.string()));
    const Result from_ids = run(concat(command, " --ids -m ", model.string(), " -i ", ids.string()));
    ASSERT_EQ(from_text.exit_code, 0) << from_text.err;
    ASSERT_EQ(from_ids.exit_code, 0) << from_ids.err;
    EXPECT_EQ(from_text.out, from_ids.out) << command;
    EXPECT_EQ(std::count(from_text.out.begin(), from_text.out.end(), '\n'), 4) << command;
    EXPECT_NE(from_text.err.find("line 4 has 102 tokens; truncated to the context 64"), std::string::npos)
        << from_text.err;
  }
}

TEST_F(EmbedCli, LongInputsAreTruncatedWithAWarningOrRejected) {
  std::string long_line;
  for (int i = 0; i < 600; ++i) long_line += "3 ";  // synthetic:bert-tiny's context is 512
  const fs::path inputs = write_inputs("1 2\n" + long_line + "\n");
  const Result truncated = run(concat("embed -m synthetic:bert-tiny --ids -i ", inputs.string()));
  ASSERT_EQ(truncated.exit_code, 0) << truncated.err;
  EXPECT_EQ(parse_rows(truncated.out).size(), 2u);
  EXPECT_NE(truncated.err.find("line 2 has 600 tokens; truncated"), std::string::npos) << truncated.err;
  const Result rejected = run(concat("embed -m synthetic:bert-tiny --ids --reject-long -i ", inputs.string()));
  EXPECT_EQ(rejected.exit_code, 1);
  EXPECT_NE(rejected.err.find("line 2 has 600 tokens"), std::string::npos) << rejected.err;
  EXPECT_EQ(run(concat("embed -m synthetic:bert-tiny --ids --truncate --reject-long -i ", inputs.string())).exit_code, 2);
}

TEST_F(EmbedCli, BadInputsFailNamingTheLine) {
  const Result bad_id = run(concat("embed -m synthetic:bert-tiny --ids -i ", write_inputs("1 2\n1 x 3\n").string()));
  EXPECT_EQ(bad_id.exit_code, 1);
  EXPECT_NE(bad_id.err.find("line 2: 'x'"), std::string::npos) << bad_id.err;
  const Result out_of_range = run(concat("embed -m synthetic:bert-tiny --ids -i ", write_inputs("256\n").string()));
  EXPECT_EQ(out_of_range.exit_code, 1);
  EXPECT_NE(out_of_range.err.find("line 1: '256'"), std::string::npos) << out_of_range.err;
  const Result no_tokenizer = run(concat("embed -m synthetic:bert-tiny -i ", write_inputs("hello\n").string()));
  EXPECT_EQ(no_tokenizer.exit_code, 1);
  EXPECT_NE(no_tokenizer.err.find("--ids"), std::string::npos) << no_tokenizer.err;
  const Result empty_classify = run(concat("classify -m synthetic:bert-tiny --ids -i ", write_inputs("1\n\n").string()));
  EXPECT_EQ(empty_classify.exit_code, 1);
  EXPECT_NE(empty_classify.err.find("line 2 has no tokens"), std::string::npos) << empty_classify.err;
  EXPECT_EQ(run("embed -m synthetic:bert-tiny --ids --pool sum -i x").exit_code, 2);
  EXPECT_EQ(run(concat("embed -m synthetic:no-such --ids -i ", write_inputs("1\n").string())).exit_code, 1);
}

}  // namespace
}  // namespace jagged
