// The accounting allocator behind every Tensor: 64-byte aligned blocks, current and peak bytes recorded.
#pragma once

#include <cstddef>

namespace jagged::core {

inline constexpr size_t kTensorAlignment = 64;

// Never returns null: throws std::bad_alloc. A zero-byte request returns a valid, unique pointer.
void* allocate_bytes(size_t bytes);
void free_bytes(void* pointer, size_t bytes) noexcept;

}  // namespace jagged::core
