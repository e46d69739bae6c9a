// Tests that need llama.cpp (scripts/setup_llamacpp.sh): they skip, saying so, when a piece of it is missing,
// unless JAGGED_REQUIRE_LLAMACPP=1, where they fail; JAGGED_SKIP_LLAMACPP=1 skips them even when it is built.
#pragma once

#include <cstdlib>
#include <string>

namespace jagged::testing {

inline bool env_is_1(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && std::string(value) == "1";
}

}  // namespace jagged::testing

// ready: whether the piece is there; what: its name in the messages ("llama.cpp", "llama-quantize").
#define JAGGED_REQUIRE_LLAMACPP_PART(ready, what)                                                                 \
  do {                                                                                                            \
    if (::jagged::testing::env_is_1("JAGGED_SKIP_LLAMACPP")) {                                                    \
      GTEST_SKIP() << "JAGGED_SKIP_LLAMACPP=1: llama.cpp tests skipped";                                          \
    }                                                                                                             \
    if (!(ready)) {                                                                                               \
      if (::jagged::testing::env_is_1("JAGGED_REQUIRE_LLAMACPP")) {                                               \
        FAIL() << "JAGGED_REQUIRE_LLAMACPP=1 but " << (what) << " is not built";                                  \
      }                                                                                                           \
      GTEST_SKIP() << (what) << " is not built (run scripts/setup_llamacpp.sh to run this test)";                 \
    }                                                                                                             \
  } while (0)
