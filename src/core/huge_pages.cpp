#include "core/huge_pages.h"

#include <sys/mman.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

#include "core/allocator.h"

namespace jagged::core {
namespace {

constexpr auto kHugePage = static_cast<size_t>(kHugePageBytes);
// Large enough that the partly used huge page at a chunk's end (the only resident waste) is a few percent of it.
constexpr size_t kChunkBytes = size_t{64} << 20;

size_t round_up(size_t value, size_t step) { return (value + step - 1) / step * step; }

// One anonymous mapping, 2 MiB aligned: mapped with a huge page's slack, then trimmed to the aligned part.
class Chunk {
 public:
  explicit Chunk(size_t bytes) : bytes_(round_up(bytes, kHugePage)) {
    void* mapping = mmap(nullptr, bytes_ + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapping == MAP_FAILED) throw std::bad_alloc();
    const auto start = reinterpret_cast<uintptr_t>(mapping);
    const uintptr_t aligned = round_up(start, kHugePage);
    if (aligned > start) munmap(mapping, aligned - start);
    const size_t tail = start + bytes_ + kHugePage - (aligned + bytes_);
    if (tail > 0) munmap(reinterpret_cast<void*>(aligned + bytes_), tail);
    base_ = reinterpret_cast<std::byte*>(aligned);
    (void)madvise(base_, bytes_, MADV_HUGEPAGE);  // advice only: without it the pages are small, still correct
  }
  ~Chunk() { munmap(base_, bytes_); }
  Chunk(const Chunk&) = delete;
  Chunk& operator=(const Chunk&) = delete;

  // The next `bytes` (64-byte aligned), or null when the chunk is full.
  std::byte* carve(size_t bytes) {
    const size_t offset = round_up(used_, kTensorAlignment);
    if (offset + bytes > bytes_) return nullptr;
    used_ = offset + bytes;
    return base_ + offset;
  }

 private:
  std::byte* base_ = nullptr;
  size_t bytes_ = 0;
  size_t used_ = 0;
};

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitizingAddresses = true;
#else
constexpr bool kSanitizingAddresses = false;
#endif

std::mutex g_mutex;
// Weak: a chunk lives as long as a tensor in it, no longer. A request is carved from the first chunk with room,
// so a large weight that opens a new chunk leaves the old one's end to the small weights after it.
std::vector<std::weak_ptr<Chunk>> g_chunks;

}  // namespace

Tensor huge_page_tensor(Shape shape, DType dtype, bool own_chunk) {
  const auto size = dtype_nbytes(dtype, shape_numel(shape));  // validates the shape
  // Under AddressSanitizer an ordinary allocation, whose overruns it catches.
  if (kSanitizingAddresses || size == 0) return Tensor(std::move(shape), dtype);
  std::shared_ptr<Chunk> chunk;
  std::byte* data = nullptr;
  {
    const std::lock_guard lock(g_mutex);
    std::erase_if(g_chunks, [](const std::weak_ptr<Chunk>& open) { return open.expired(); });
    for (const std::weak_ptr<Chunk>& open : g_chunks) {
      if (own_chunk) break;
      chunk = open.lock();
      data = chunk->carve(size);
      if (data != nullptr) break;
    }
    if (data == nullptr) {
      chunk = std::make_shared<Chunk>(own_chunk ? size : std::max(size, kChunkBytes));
      data = chunk->carve(size);
      if (!own_chunk) g_chunks.push_back(chunk);
    }
  }
  record_allocation(size);
  // The tensor's owner keeps its chunk mapped; its release gives the bytes back to the count, and the huge pages
  // that only it used back to the system (the chunk's space is not reused: a freed KV cache must not stay
  // resident while the weights beside it live on).
  std::shared_ptr<const void> owner(data, [chunk, size](const void* begin) {
    const auto first = round_up(reinterpret_cast<uintptr_t>(begin), kHugePage);
    const auto last = (reinterpret_cast<uintptr_t>(begin) + size) / kHugePage * kHugePage;
    if (last > first) (void)madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
    record_free(size);
  });
  return Tensor::borrow(std::move(owner), data, std::move(shape), dtype);
}

}  // namespace jagged::core
