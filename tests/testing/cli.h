// Running the built `jagged` binary from tests: arguments in, exit code and both output streams back.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "jagged/error.h"

namespace jagged::testing {

struct CliResult {
  int exit_code = -1;  // -1 when the process did not exit normally (a crash)
  std::string out;
  std::string err;
};

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A fixture with a private temporary folder and `run("bench --model ...")`. Standard input is /dev/null.
class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    binary_ = std::filesystem::path(JAGGED_BINARY_DIR) / "jagged";
    ASSERT_TRUE(std::filesystem::exists(binary_)) << binary_ << " is missing: build the jagged_cli target first";
    const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
    directory_ = std::filesystem::temp_directory_path() /
                 concat("jagged_cli_", test->test_suite_name(), "_", test->name(), "_", ::getpid());
    std::filesystem::create_directories(directory_);
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }

  std::filesystem::path write_file(const std::string& name, const std::string& text) {
    const std::filesystem::path path = directory_ / name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  CliResult run(const std::string& arguments, const std::string& stdin_path = "/dev/null") {
    const std::filesystem::path out = directory_ / "stdout.txt";
    const std::filesystem::path err = directory_ / "stderr.txt";
    const std::string command = concat(binary_.string(), " ", arguments, " < ", stdin_path, " > ", out.string(),
                                       " 2> ", err.string());
    const int status = std::system(command.c_str());
    CliResult result;
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    result.out = read_text(out);
    result.err = read_text(err);
    return result;
  }

  std::filesystem::path binary_;
  std::filesystem::path directory_;
};

}  // namespace jagged::testing
