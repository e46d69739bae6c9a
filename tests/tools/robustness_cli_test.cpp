// Every error reaches the user (issue 10): the CLI fed bad input, and bad places to write, as a careless or
// hostile user would. Each case must end in a non-zero exit and a message naming the problem; none may exit 0
// with a lost or silently wrong result, crash or hang.
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "io/model_writers.h"
#include "testing/cli.h"

namespace jagged {
namespace {

namespace fs = std::filesystem;
using testing::CliResult;

class RobustCli : public testing::CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    timeout_seconds_ = 300;  // a hang here is the bug being tested for
  }

  // A WordPiece vocabulary (with [CLS] and [SEP] unless told otherwise) and a few lines to tokenize.
  fs::path write_vocab(bool with_cls_sep = true) {
    std::string vocab = "[PAD]\n[UNK]\n";
    vocab += with_cls_sep ? "[CLS]\n[SEP]\n" : "[X1]\n[X2]\n";
    vocab += "[MASK]\nhello\nworld\nthe\ncat\n";
    return write_file(with_cls_sep ? "vocab.txt" : "vocab_no_cls.txt", vocab);
  }

  // A tiny llama2.c checkpoint; `poison` is written into one weight of blk.1.ffn_down.weight when given.
  fs::path write_llama2c(const std::string& name, float poison = 0.0f, bool poisoned = false) {
    LlamaConfig config = testing::tiny_llama_config();
    config.num_heads = config.num_kv_heads = 2;  // head_dim 8: the attention kernel's smallest
    config.head_dim = 8;
    WeightMap weights = testing::random_llama_weights(config);
    if (poisoned) weights.at("blk.1.ffn_down.weight").data<float>()[5] = poison;
    const fs::path path = directory_ / name;
    testing::write_file(path, testing::llama2c_bytes(config, weights));
    return path;
  }

  static void expect_error(const CliResult& result, const std::string& what, const std::string& message) {
    EXPECT_EQ(result.exit_code, 1) << what << "\nstderr: " << result.err;
    EXPECT_NE(result.err.find(message), std::string::npos) << what << "\nstderr: " << result.err;
  }
};

// Class 1: output that could not be written (a full disk, a closed stream) is an error for every command.
TEST_F(RobustCli, OutputThatCannotBeWrittenIsAnError) {
  const fs::path vocab = write_vocab();
  const fs::path text = write_file("text.txt", "hello world\nthe cat\n");
  const fs::path ids = write_file("ids.txt", "5 6\n7 8\n");
  const std::vector<std::pair<std::string, std::string>> commands{
      {"run --model synthetic:tiny -n 4", "/dev/null"},
      {concat("tokenize --tokenizer ", vocab.string()), text.string()},
      {concat("detokenize --tokenizer ", vocab.string()), ids.string()},
      {concat("embed -m synthetic:bert-tiny --ids -i ", ids.string()), "/dev/null"},
      {concat("classify -m synthetic:bert-tiny --ids -i ", ids.string()), "/dev/null"},
      {"parity --model synthetic:tiny --batch 2 --min-len 1 --max-len 8", "/dev/null"},
      {"bench --model synthetic:tiny --dist uniform --batch 2 --min-len 1 --max-len 8 --runs 1 --warmup 0",
       "/dev/null"},
      {"generate --model synthetic:tiny -n 4", "/dev/null"},
      {"bench --decode --model synthetic:tiny --concurrency 1 --prompt-len 4 --new-tokens 2 --no-padded "
       "--no-step-probe",
       "/dev/null"},
      {concat("export --model synthetic:tiny --gguf ", (directory_ / "out.gguf").string()), "/dev/null"},
  };
  for (const auto& [arguments, input] : commands) {
    const CliResult written = run(arguments, input);
    ASSERT_EQ(written.exit_code, 0) << arguments << ": " << written.err;
    EXPECT_FALSE(written.out.empty()) << arguments;
    expect_error(run(arguments, input, "/dev/full"), arguments + " > /dev/full", "could not write to standard output");
    expect_error(run(arguments, input, "-"), arguments + " >&-", "could not write to standard output");
  }
}

// Class 2: an input that cannot be read is an error, never an empty input.
TEST_F(RobustCli, InputThatCannotBeReadIsAnError) {
  const fs::path vocab = write_vocab();
  const std::string folder = directory_.string();
  expect_error(run(concat("run --model synthetic:tiny --prompts ", folder)), "--prompts DIR", "is a directory");
  expect_error(run(concat("generate --model synthetic:tiny --prompts ", folder)), "generate --prompts DIR",
               "is a directory");
  expect_error(run(concat("embed -m synthetic:bert-tiny --ids -i ", folder)), "-i DIR", "is a directory");
  expect_error(run("embed -m synthetic:bert-tiny --ids -i -", folder), "-i - < DIR", "standard input");
  expect_error(run(concat("tokenize --tokenizer ", vocab.string()), folder), "tokenize < DIR", "is a directory");
  expect_error(run(concat("detokenize --tokenizer ", vocab.string()), folder), "detokenize < DIR", "is a directory");
  expect_error(run(concat("tokenize --tokenizer ", vocab.string()), "-"), "tokenize <&-", "standard input");
  expect_error(run("run --model synthetic:tiny --prompts /no/such/prompts.txt"), "missing prompts", "cannot open");
  if (::geteuid() != 0) {  // root reads any file
    const fs::path locked = write_file("locked.txt", "hello\n");
    fs::permissions(locked, fs::perms::none);
    expect_error(run(concat("run --model synthetic:tiny --prompts ", locked.string())), "unreadable", "cannot open");
  }
}

// Class 3: N inputs give N outputs, N = 0 included.
TEST_F(RobustCli, ZeroInputsGiveZeroOutputs) {
  const fs::path empty = write_file("empty.txt", "");
  CliResult result = run(concat("run --model synthetic:tiny -n 4 --prompts ", empty.string()));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "") << "an empty prompts file has no prompt to continue";
  result = run(concat("generate --model synthetic:tiny -n 4 --prompts ", empty.string()));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "") << "generate: an empty prompts file has no prompt to continue";
  result = run("run --model synthetic:tiny -n 4");  // no prompt at all: one continuation from BOS
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(std::count(result.out.begin(), result.out.end(), '\n'), 1) << result.out;
  result = run(concat("tokenize --tokenizer ", write_vocab().string()), empty.string());
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "");
  result = run(concat("embed -m synthetic:bert-tiny --ids -i ", empty.string()));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "");
}

TEST_F(RobustCli, PromptsFileLinesEachGiveOneContinuation) {
  const auto model = testing::shared_dir() / "models" / "stories260K" / "stories260K.bin";
  JAGGED_REQUIRE_PATH(model);
  const fs::path prompts = write_file("prompts.txt", "Once upon a time\n\nLily");  // last line without '\n'
  const CliResult result = run(concat("run --model ", model.string(), " -n 5 --prompts ", prompts.string()));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(std::count(result.out.begin(), result.out.end(), '\n'), 3) << result.out;
}

// Class 5: inputs that would block or never end, and resources beyond the machine.
TEST_F(RobustCli, UnboundedInputsAreRefused) {
  const fs::path fifo = directory_ / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const std::string& tokenizer : {std::string("/dev/zero"), fifo.string()}) {
    expect_error(run(concat("tokenize --tokenizer ", tokenizer)), "tokenizer " + tokenizer, "not a regular file");
    expect_error(run(concat("run --model synthetic:tiny --tokenizer ", tokenizer, " -p hi")), "run --tokenizer",
                 "not a regular file");
  }
  expect_error(run(concat("parity --model ", fifo.string())), "model FIFO", "not a regular file");
  expect_error(run("bench --model synthetic:tiny --dist lengths:/dev/zero"), "lengths /dev/zero", "not a regular file");
  expect_error(run(concat("bench --model synthetic:tiny --dist corpus:/dev/zero --tokenizer ", write_vocab().string())),
               "corpus /dev/zero", "not a regular file");
  // A length far past the context is refused before the batch is allocated (2e9 tokens would be 8 GB).
  const fs::path lengths = write_file("lengths.txt", "5 2000000000\n");
  expect_error(run(concat("bench --model synthetic:tiny --dist lengths:", lengths.string())), "huge length",
               "exceeds the model's context length");
  expect_error(run(concat("parity --model synthetic:tiny --dist lengths:", lengths.string())), "huge length",
               "exceeds the model's context length");
}

TEST_F(RobustCli, InputLinesHaveADocumentedLimit) {
  const std::string long_line(std::size_t{1} << 21, 'a');  // 2 MiB, over the 1 MiB limit
  const fs::path prompts = write_file("long.txt", "short\n" + long_line + "\n");
  expect_error(run(concat("run --model synthetic:tiny --prompts ", prompts.string())), "2 MiB prompt",
               "line 2 is longer than 1048576 bytes");
  const fs::path vocab = write_vocab();
  expect_error(run(concat("tokenize --tokenizer ", vocab.string()), "/dev/zero"), "tokenize < /dev/zero",
               "line 1 is longer than 1048576 bytes");
  expect_error(run(concat("embed -m synthetic:bert-tiny --ids -i ", prompts.string())), "2 MiB input",
               "longer than 1048576 bytes");
  EXPECT_NE(run("run --help").out.find("1 MiB"), std::string::npos) << "the limit is documented";
}

TEST_F(RobustCli, ThreadsAreCappedAtTheCoresWithAWarning) {
  const CliResult result = run("bench --model synthetic:tiny --dist uniform --batch 2 --min-len 1 --max-len 8 "
                               "--runs 1 --warmup 0 --threads 10000");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("--threads 10000 is more than the"), std::string::npos) << result.err;
  EXPECT_EQ(result.out.find("10000 threads"), std::string::npos) << result.out;
  expect_error(run("bench --model synthetic:tiny --threads -2"), "negative threads", "--threads");
}

// Class 6: models whose numbers are unusable are refused at load, naming the tensor.
TEST_F(RobustCli, NonFiniteWeightsAreRefusedAtLoad) {
  const float poisons[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                           -std::numeric_limits<float>::infinity()};
  for (const float poison : poisons) {
    const fs::path model = write_llama2c("poisoned.bin", poison, true);
    const CliResult result = run(concat("parity --model ", model.string()));
    expect_error(result, concat("weight ", poison), "blk.1.ffn_down.weight");
    EXPECT_NE(result.err.find("non-finite weight"), std::string::npos) << result.err;
  }
  const fs::path healthy = write_llama2c("healthy.bin");
  const CliResult result = run(concat("parity --model ", healthy.string(), " --batch 2 --max-len 16"));
  EXPECT_EQ(result.exit_code, 0) << result.err;
}

TEST_F(RobustCli, EncoderInputsNeedClsSepAndTokens) {
  const fs::path inputs = write_file("inputs.txt", "hello world\n");
  expect_error(run(concat("embed -m synthetic:bert-tiny --tokenizer ", write_vocab(false).string(), " -i ",
                          inputs.string())),
               "vocab without [CLS]", "[CLS]");
  EXPECT_EQ(run(concat("embed -m synthetic:bert-tiny --tokenizer ", write_vocab(true).string(), " -i ",
                       inputs.string())).exit_code, 0);
  const fs::path ids = write_file("ids.txt", "5 6\n\n7\n");
  expect_error(run(concat("embed -m synthetic:bert-tiny --ids -i ", ids.string())), "empty --ids line",
               "inputs line 2 has no tokens: nothing to embed");
}

// Class 7: options that would be ignored, and output paths that cannot work, fail before the run.
TEST_F(RobustCli, ConflictingOrDangerousOptionsFailBeforeTheRun) {
  expect_error(run("bench --model synthetic:tiny --batch 4 --max-len 20"), "--batch with --dist study",
               "do not apply to --dist study");
  const fs::path lengths = write_file("lengths.txt", "3 4\n");
  expect_error(run(concat("bench --model synthetic:tiny --dist lengths:", lengths.string(), " --min-len 2")),
               "--min-len with lengths:", "do not apply");
  expect_error(run("parity --model synthetic:tiny --dist study --batch 4"), "parity --batch with study", "do not apply");

  const fs::path model = write_llama2c("model.bin");
  const std::string quick = "--dist uniform --batch 2 --min-len 1 --max-len 8 --runs 1 --warmup 0";
  CliResult result = run(concat("bench --model ", model.string(), " ", quick, " --json ", model.string()));
  expect_error(result, "--json = model", "would overwrite");
  EXPECT_GT(fs::file_size(model), 100u) << "the model file is intact";
  const std::string same = (directory_ / "r.out").string();
  expect_error(run(concat("bench --model synthetic:tiny ", quick, " --json ", same, " --plot ", same)),
               "--json = --plot", "would overwrite");
  // export reads the model while it writes the GGUF: writing over it would corrupt both.
  const fs::path gguf = directory_ / "model.gguf";
  ASSERT_EQ(run(concat("export --model synthetic:tiny --gguf ", gguf.string())).exit_code, 0);
  const auto gguf_size = fs::file_size(gguf);
  expect_error(run(concat("export --model ", gguf.string(), " --gguf ", gguf.string())), "export onto its model",
               "would overwrite");
  EXPECT_EQ(fs::file_size(gguf), gguf_size) << "the model file is intact";

  // An output folder that cannot be made (its parent is a file) is reported before any work is done.
  const fs::path blocker = write_file("blocker", "");
  result = run(concat("bench --model synthetic:tiny ", quick, " --json ", (blocker / "r.json").string()));
  expect_error(result, "--json under a file", "--json");
  EXPECT_EQ(result.out.find("real tokens/s"), std::string::npos) << "no run before the check: " << result.out;
}

TEST_F(RobustCli, MissingOutputFoldersAreCreated) {
  const fs::path json = directory_ / "out" / "deeper" / "bench.json";
  const fs::path plot = directory_ / "out" / "bench.svg";
  const CliResult result = run(concat("bench --model synthetic:tiny --dist uniform --batch 2 --min-len 1 --max-len 8 ",
                                      "--runs 1 --warmup 0 --json ", json.string(), " --plot ", plot.string()));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_TRUE(nlohmann::json::parse(testing::read_text(json)).contains("lengths"));
  EXPECT_EQ(testing::read_text(plot).rfind("<svg", 0), 0u);
}

// Class 8: messages that say what is wrong.
TEST_F(RobustCli, GgufWithABadMagicIsReportedAsGguf) {
  const fs::path bad = write_file("broken.gguf", std::string("GGUX") + std::string(60, '\0'));
  for (const char* command : {"parity --model ", "tokenize --tokenizer "}) {
    const CliResult result = run(command + bad.string());
    expect_error(result, command, "not a GGUF file");
    EXPECT_EQ(result.err.find("llama2.c"), std::string::npos) << result.err;
  }
}

TEST_F(RobustCli, NonUtf8ModelPathStillWritesValidJson) {
  const fs::path fixture = fs::path(JAGGED_SOURCE_DIR) / "tests" / "fixtures" / "bert-tiny";
  const fs::path model = directory_ / "bert-\xff";
  fs::copy(fixture, model, fs::copy_options::recursive);
  const fs::path json = directory_ / "r.json";
  const CliResult result = run(concat("bench --model '", model.string(), "' --dist uniform --batch 2 --min-len 1 ",
                                      "--max-len 8 --runs 1 --warmup 0 --json ", json.string()));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("not valid UTF-8"), std::string::npos) << result.err;
  const nlohmann::json report = nlohmann::json::parse(testing::read_text(json));
  EXPECT_EQ(report["model"].get<std::string>().find("bert-\xef\xbf\xbd"), directory_.string().size() + 1)
      << report["model"];
}

}  // namespace
}  // namespace jagged
