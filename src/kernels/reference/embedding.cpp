#include "kernels/embedding.h"

namespace jagged::kernels::reference {

void embedding(const int32_t* token_ids, int64_t num_tokens, const float* table, int64_t dim, float* out) {
  for (int64_t t = 0; t < num_tokens; ++t) {
    const float* row = table + static_cast<int64_t>(token_ids[t]) * dim;
    for (int64_t i = 0; i < dim; ++i) out[t * dim + i] = row[i];
  }
}

}  // namespace jagged::kernels::reference
