// Stand-in for ggml.h when compiling llama.cpp's common/json.cpp (for its Jinja engine) without ggml: json.cpp uses
// only GGML_ASSERT, as nlohmann::json's JSON_ASSERT, which checks the library's internal invariants (never input)
// and runs in noexcept code: nlohmann's own default, assert(), is the right stand-in (off in Release builds).
#pragma once

#include <cassert>

#define GGML_ASSERT(condition) assert(condition)
