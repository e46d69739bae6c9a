// Finding the NaN or infinity in a float array quickly: both have every exponent bit set, an integer test the
// compiler vectorizes over the whole array; the (slower) search for the first such element runs only when there
// is one. Used where every value must be finite: loaded weights, logits before sampling.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <span>

namespace jagged::core {

// Index of the first NaN or infinity in values, or -1 when every value is finite.
inline int64_t first_non_finite(std::span<const float> values) {
  uint32_t non_finite = 0;
  for (const float v : values) non_finite |= static_cast<uint32_t>((std::bit_cast<uint32_t>(v) & 0x7f800000u) == 0x7f800000u);
  if (non_finite == 0) return -1;
  return std::find_if(values.begin(), values.end(), [](float v) { return !std::isfinite(v); }) - values.begin();
}

}  // namespace jagged::core
