// The accounting allocator behind every Tensor: 64-byte aligned blocks, current and peak bytes recorded.
#pragma once

#include <cstddef>

namespace jagged::core {

inline constexpr size_t kTensorAlignment = 64;

// Never returns null: throws std::bad_alloc. A zero-byte request returns a valid, unique pointer.
void* allocate_bytes(size_t bytes);
void free_bytes(void* pointer, size_t bytes) noexcept;

// The counts behind memory_stats(), for allocators that carve their own blocks (core/huge_pages).
void record_allocation(size_t bytes) noexcept;
void record_free(size_t bytes) noexcept;

}  // namespace jagged::core
