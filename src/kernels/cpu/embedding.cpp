#include "kernels/embedding.h"

#include <algorithm>
#include <cstring>

#include "core/threads.h"

namespace jagged::kernels::cpu {

void embedding(const int32_t* token_ids, int64_t num_tokens, const float* table, int64_t dim, float* out) {
  const size_t row_bytes = static_cast<size_t>(dim) * sizeof(float);
  const int64_t min_rows = std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(dim, 1));
  core::parallel_rows(num_tokens, min_rows, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      std::memcpy(out + t * dim, table + static_cast<int64_t>(token_ids[t]) * dim, row_bytes);
    }
  });
}

}  // namespace jagged::kernels::cpu
