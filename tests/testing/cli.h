// Running the built `jagged` binary from tests: arguments in, exit code and both output streams back.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "jagged/error.h"
#include "testing/files.h"

namespace jagged::testing {

struct CliResult {
  int exit_code = -1;  // -1 when the process did not exit normally (a crash)
  std::string out;
  std::string err;
};

// A fixture with a private temporary folder and `run("bench --model ...")`. Standard input is /dev/null unless
// a path is given ("-": closed); standard output is captured unless a path is given ("/dev/full"; "-": closed).
// A command still running after timeout_seconds_ is killed (exit code 124 or 137): a hang fails, never blocks
// (coreutils' timeout by its absolute path, as a test may empty PATH).
// JAGGED_CLI=/path/to/jagged runs another binary (an older build, to see a new test fail).
class CliTest : public ScratchDirTest {
 protected:
  void SetUp() override {
    const char* other = std::getenv("JAGGED_CLI");
    binary_ = other != nullptr ? std::filesystem::path(other) : std::filesystem::path(JAGGED_BINARY_DIR) / "jagged";
    ASSERT_TRUE(std::filesystem::exists(binary_)) << binary_ << " is missing: build the jagged_cli target first";
    ScratchDirTest::SetUp();
  }

  CliResult run(const std::string& arguments, const std::string& stdin_path = "/dev/null",
                const std::string& stdout_path = "") {
    const std::filesystem::path out = directory_ / "stdout.txt";
    const std::filesystem::path err = directory_ / "stderr.txt";
    const std::string input = stdin_path == "-" ? "<&-" : concat("< ", stdin_path);
    const std::string output = stdout_path.empty() ? concat("> ", out.string())
                               : stdout_path == "-" ? std::string(">&-")
                                                    : concat("> ", stdout_path);
    std::filesystem::remove(out);
    const std::string command = concat("/usr/bin/timeout -k 5 ", timeout_seconds_, " ", binary_.string(), " ", arguments, " ",
                                       input, " ", output, " 2> ", err.string());
    const int status = std::system(command.c_str());
    CliResult result;
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    result.out = read_text(out);
    result.err = read_text(err);
    return result;
  }

  std::filesystem::path binary_;
  int timeout_seconds_ = 900;
};

}  // namespace jagged::testing
