// Shared by the tokenizer fuzz targets: a per-process scratch file for loader inputs, and the calls every
// loaded tokenizer must survive.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "jagged/error.h"
#include "jagged/tokenizer.h"

namespace jagged::fuzz {

// Writes `size` bytes to <tmp>/jagged_fuzz_<pid>/<name> and returns the path.
inline std::filesystem::path write_scratch(const std::string& name, const uint8_t* data, size_t size) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("jagged_fuzz_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::filesystem::path path = dir / name;
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data),
                                                                static_cast<std::streamsize>(size));
  return path;
}

// Every id encode returns is in the vocabulary, and decode accepts it; out-of-range ids throw InvalidArgument.
inline void exercise(const Tokenizer& tokenizer, std::string_view text) {
  for (const bool special : {false, true}) {
    const std::vector<int32_t> ids = tokenizer.encode(text, special, special);
    for (const int32_t id : ids) {
      if (id < 0 || id >= tokenizer.vocab_size()) __builtin_trap();
    }
    (void)tokenizer.decode(ids);
    int32_t previous = -1;
    for (const int32_t id : ids) {
      (void)tokenizer.decode_token(previous, id);
      (void)tokenizer.piece(id);
      previous = id;
    }
  }
  try {
    (void)tokenizer.decode({static_cast<int32_t>(tokenizer.vocab_size())});
    __builtin_trap();
  } catch (const InvalidArgument&) {
  }
}

// Loads `path` as a tokenizer; bad files must fail with jagged::Error (FileError / InvalidArgument), nothing else.
inline void load_and_exercise(const std::filesystem::path& path, std::string_view text) {
  std::unique_ptr<Tokenizer> tokenizer;
  try {
    tokenizer = load_tokenizer(path);
  } catch (const Error&) {
    return;
  }
  exercise(*tokenizer, text);
}

}  // namespace jagged::fuzz
