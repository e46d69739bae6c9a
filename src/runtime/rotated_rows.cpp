#include "runtime/rotated_rows.h"

#include <algorithm>

namespace jagged {

Tensor permute_rotated_rows(const Tensor& weight, int num_heads, int head_dim, bool to_halves) {
  Tensor out(weight.shape());
  const int64_t row_elems = weight.numel() / weight.dim(0);
  const float* in = weight.data<float>();
  float* dst = out.data<float>();
  for (int head = 0; head < num_heads; ++head) {
    for (int row = 0; row < head_dim; ++row) {
      const int64_t halves_row = int64_t{head} * head_dim + (row % 2 == 0 ? row / 2 : head_dim / 2 + row / 2);
      const int64_t adjacent_row = int64_t{head} * head_dim + row;
      std::copy_n(in + (to_halves ? adjacent_row : halves_row) * row_elems, row_elems,
                  dst + (to_halves ? halves_row : adjacent_row) * row_elems);
    }
  }
  return out;
}

}  // namespace jagged
