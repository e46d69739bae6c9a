#include "kernels/rope.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include <hwy/highway.h>

#include "core/threads.h"

namespace jagged::kernels::cpu {
namespace hn = hwy::HWY_NAMESPACE;

namespace {

using FloatTag = hn::ScalableTag<float>;
constexpr size_t kMaxLanes = HWY_MAX_BYTES / sizeof(float);

// Adjacent pairs, one vector at a time: out = x * cos + swap_pairs(x) * sin_signed, where cos holds
// (c_i, c_i) and sin_signed (-s_i, +s_i) for pair i. A vector never splits a pair (lanes are even).
void rotate_adjacent(float* head, const float* cos_full, const float* sin_signed, int64_t head_dim) {
  const FloatTag d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  const auto rotate = [d](auto v, auto c, auto s) { return hn::MulAdd(hn::Reverse2(d, v), s, hn::Mul(v, c)); };
  int64_t j = 0;
  for (; j + lanes <= head_dim; j += lanes) {
    const auto v = hn::LoadU(d, head + j);
    hn::StoreU(rotate(v, hn::LoadU(d, cos_full + j), hn::LoadU(d, sin_signed + j)), d, head + j);
  }
  if (j < head_dim) {  // same vector code on zero-padded copies
    HWY_ALIGN float v[kMaxLanes] = {};
    HWY_ALIGN float c[kMaxLanes] = {};
    HWY_ALIGN float s[kMaxLanes] = {};
    const size_t bytes = static_cast<size_t>(head_dim - j) * sizeof(float);
    std::memcpy(v, head + j, bytes);
    std::memcpy(c, cos_full + j, bytes);
    std::memcpy(s, sin_signed + j, bytes);
    hn::Store(rotate(hn::Load(d, v), hn::Load(d, c), hn::Load(d, s)), d, v);
    std::memcpy(head + j, v, bytes);
  }
}

// Halves: a = head[i], b = head[i + half]; a' = a c - b s, b' = a s + b c.
void rotate_halves(float* head, const float* cos_half, const float* sin_half, int64_t half) {
  const FloatTag d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  const auto rotate = [](auto& a, auto& b, auto c, auto s) {
    const auto a_new = hn::MulSub(a, c, hn::Mul(b, s));
    b = hn::MulAdd(a, s, hn::Mul(b, c));
    a = a_new;
  };
  int64_t i = 0;
  for (; i + lanes <= half; i += lanes) {
    auto a = hn::LoadU(d, head + i);
    auto b = hn::LoadU(d, head + half + i);
    rotate(a, b, hn::LoadU(d, cos_half + i), hn::LoadU(d, sin_half + i));
    hn::StoreU(a, d, head + i);
    hn::StoreU(b, d, head + half + i);
  }
  if (i < half) {
    HWY_ALIGN float a_buf[kMaxLanes] = {};
    HWY_ALIGN float b_buf[kMaxLanes] = {};
    HWY_ALIGN float c_buf[kMaxLanes] = {};
    HWY_ALIGN float s_buf[kMaxLanes] = {};
    const size_t bytes = static_cast<size_t>(half - i) * sizeof(float);
    std::memcpy(a_buf, head + i, bytes);
    std::memcpy(b_buf, head + half + i, bytes);
    std::memcpy(c_buf, cos_half + i, bytes);
    std::memcpy(s_buf, sin_half + i, bytes);
    auto a = hn::Load(d, a_buf);
    auto b = hn::Load(d, b_buf);
    rotate(a, b, hn::Load(d, c_buf), hn::Load(d, s_buf));
    hn::Store(a, d, a_buf);
    hn::Store(b, d, b_buf);
    std::memcpy(head + i, a_buf, bytes);
    std::memcpy(head + half + i, b_buf, bytes);
  }
}

// The rotation of one position as two arrays of head_dim floats: for adjacent pairs cos (c_i, c_i) and
// sin_signed (-s_i, +s_i); for halves cos c_i and sin s_i in the first head_dim / 2 entries.
void fill_rotation(int32_t position, const float* inv_freq, int64_t head_dim, ops::RopePairs pairs, float* cos_out,
                   float* sin_out) {
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    const float angle = static_cast<float>(position) * inv_freq[i];
    const auto c = static_cast<float>(std::cos(static_cast<double>(angle)));
    const auto s = static_cast<float>(std::sin(static_cast<double>(angle)));
    if (pairs == ops::RopePairs::adjacent) {
      cos_out[2 * i] = cos_out[2 * i + 1] = c;
      sin_out[2 * i] = -s;
      sin_out[2 * i + 1] = s;
    } else {
      cos_out[i] = c;
      sin_out[i] = s;
    }
  }
}

void rotate_token(float* row, int64_t num_heads, int64_t head_dim, const float* cos_row, const float* sin_row,
                  ops::RopePairs pairs) {
  for (int64_t h = 0; h < num_heads; ++h) {
    float* head = row + h * head_dim;
    if (pairs == ops::RopePairs::adjacent) {
      rotate_adjacent(head, cos_row, sin_row, head_dim);
    } else {
      rotate_halves(head, cos_row, sin_row, head_dim / 2);
    }
  }
}

}  // namespace

void rope_rotations(const int32_t* positions, int64_t rows, const float* inv_freq, int64_t head_dim,
                    ops::RopePairs pairs, float* rotations) {
  if (rows == 0) return;
  const int64_t row_floats = 2 * head_dim;  // cos then sin
  // Sequences of a batch share positions (0, 1, 2... in a prefill): when there are fewer distinct positions than
  // tokens, the cosines and sines are computed once per position into a table and copied to each token's row.
  // Both ways call fill_rotation, so the values are the same.
  const auto [min_it, max_it] = std::minmax_element(positions, positions + rows);
  const int64_t first = *min_it;
  const int64_t span = int64_t{*max_it} - first + 1;
  if (span < rows) {
    std::vector<float> table(static_cast<size_t>(span * row_floats));
    core::parallel_rows(span, 64, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        float* entry = table.data() + p * row_floats;
        fill_rotation(static_cast<int32_t>(first + p), inv_freq, head_dim, pairs, entry, entry + head_dim);
      }
    });
    core::parallel_rows(rows, 256, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        std::memcpy(rotations + t * row_floats, table.data() + (positions[t] - first) * row_floats,
                    static_cast<size_t>(row_floats) * sizeof(float));
      }
    });
    return;
  }
  core::parallel_rows(rows, 64, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      float* entry = rotations + t * row_floats;
      fill_rotation(positions[t], inv_freq, head_dim, pairs, entry, entry + head_dim);
    }
  });
}

void rope_apply(MatrixView x, int64_t num_heads, int64_t head_dim, const float* rotations, ops::RopePairs pairs) {
  if (x.rows == 0) return;
  const int64_t min_rows = std::max<int64_t>(1, 4096 / std::max<int64_t>(x.cols, 1));
  core::parallel_rows(x.rows, min_rows, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const float* entry = rotations + t * 2 * head_dim;
      rotate_token(x.row(t), num_heads, head_dim, entry, entry + head_dim, pairs);
    }
  });
}

}  // namespace jagged::kernels::cpu
