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

}  // namespace

void rope(MatrixView x, int64_t num_heads, int64_t head_dim, const int32_t* positions, const float* inv_freq,
          ops::RopePairs pairs) {
  const int64_t half = head_dim / 2;
  const int64_t min_rows = std::max<int64_t>(1, 4096 / std::max<int64_t>(x.cols, 1));
  core::parallel_rows(x.rows, min_rows, [&](int64_t begin, int64_t end) {
    // Per token: the cosines and sines of its head_dim / 2 angles, shared by all its heads.
    std::vector<float> cos_table(static_cast<size_t>(head_dim));
    std::vector<float> sin_table(static_cast<size_t>(head_dim));
    for (int64_t t = begin; t < end; ++t) {
      for (int64_t i = 0; i < half; ++i) {
        const float angle = static_cast<float>(positions[t]) * inv_freq[i];
        const auto c = static_cast<float>(std::cos(static_cast<double>(angle)));
        const auto s = static_cast<float>(std::sin(static_cast<double>(angle)));
        if (pairs == ops::RopePairs::adjacent) {
          cos_table[2 * i] = cos_table[2 * i + 1] = c;
          sin_table[2 * i] = -s;
          sin_table[2 * i + 1] = s;
        } else {
          cos_table[i] = c;
          sin_table[i] = s;
        }
      }
      for (int64_t h = 0; h < num_heads; ++h) {
        float* head = x.row(t) + h * head_dim;
        if (pairs == ops::RopePairs::adjacent) {
          rotate_adjacent(head, cos_table.data(), sin_table.data(), head_dim);
        } else {
          rotate_halves(head, cos_table.data(), sin_table.data(), half);
        }
      }
    }
  });
}

}  // namespace jagged::kernels::cpu
