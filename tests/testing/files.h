// Test helpers for code that reads files: a fixture with a private temporary folder, reading and writing whole
// files, and a check that a FileError's message names what it should.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>

#include "jagged/error.h"

namespace jagged::testing {

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline void write_text_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream stream(path, std::ios::binary | std::ios::trunc);
  stream << text;
  ASSERT_TRUE(stream.good()) << path;
}

// Expects `body()` to throw a FileError whose message contains every fragment.
template <typename Body>
void expect_file_error(Body&& body, std::initializer_list<std::string> fragments) {
  try {
    body();
    ADD_FAILURE() << "expected a FileError containing '" << *fragments.begin() << "'";
  } catch (const FileError& error) {
    for (const auto& fragment : fragments) {
      EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos)
          << "message: " << error.what() << "\nmissing: " << fragment;
    }
  }
}

// A fixture with a private temporary folder (directory_), named after the test and the process, removed after
// the test.
class ScratchDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
    directory_ = std::filesystem::temp_directory_path() /
                 concat("jagged_", test->test_suite_name(), "_", test->name(), "_", ::getpid());
    std::filesystem::remove_all(directory_);
    std::filesystem::create_directories(directory_);
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }

  // Writes `text` to directory_ / name and returns that path.
  std::filesystem::path write_file(const std::string& name, const std::string& text) {
    const std::filesystem::path path = directory_ / name;
    write_text_file(path, text);
    return path;
  }

  std::filesystem::path directory_;
};

}  // namespace jagged::testing
