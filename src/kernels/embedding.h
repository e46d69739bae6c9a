// Embedding lookup: out[t] = table[token_ids[t]]. Unchecked: ops/ validates every id against vocab_size.
#pragma once

#include <cstdint>

namespace jagged::kernels {

namespace reference {
// token_ids [num_tokens] i32 in [0, vocab_size); table [vocab_size, dim]; out [num_tokens, dim].
void embedding(const int32_t* token_ids, int64_t num_tokens, const float* table, int64_t dim, float* out);
}  // namespace reference

namespace cpu {
void embedding(const int32_t* token_ids, int64_t num_tokens, const float* table, int64_t dim, float* out);
}  // namespace cpu

}  // namespace jagged::kernels
