#include "core/allocator.h"

#include <sys/resource.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <new>
#include <string>

#include "jagged/memory.h"

namespace jagged {
namespace {

std::atomic<int64_t> g_current_bytes{0};
std::atomic<int64_t> g_peak_bytes{0};
std::atomic<int64_t> g_allocations{0};

size_t padded_size(size_t bytes) {
  const size_t rounded = (bytes + core::kTensorAlignment - 1) / core::kTensorAlignment * core::kTensorAlignment;
  return rounded == 0 ? core::kTensorAlignment : rounded;
}

void raise_peak(int64_t current) {
  int64_t peak = g_peak_bytes.load(std::memory_order_relaxed);
  while (current > peak && !g_peak_bytes.compare_exchange_weak(peak, current, std::memory_order_relaxed)) {
  }
}

}  // namespace

MemoryStats memory_stats() {
  return {g_current_bytes.load(), g_peak_bytes.load(), g_allocations.load()};
}

void reset_peak_memory() { g_peak_bytes.store(g_current_bytes.load()); }

namespace core {

void record_allocation(size_t bytes) noexcept {
  const int64_t current = g_current_bytes.fetch_add(static_cast<int64_t>(bytes)) + static_cast<int64_t>(bytes);
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  raise_peak(current);
}

void record_free(size_t bytes) noexcept { g_current_bytes.fetch_sub(static_cast<int64_t>(bytes)); }

void* allocate_bytes(size_t bytes) {
  void* pointer = std::aligned_alloc(kTensorAlignment, padded_size(bytes));
  if (pointer == nullptr) throw std::bad_alloc();
  record_allocation(bytes);
  return pointer;
}

void free_bytes(void* pointer, size_t bytes) noexcept {
  if (pointer == nullptr) return;
  std::free(pointer);
  record_free(bytes);
}

}  // namespace core

int64_t process_peak_rss_bytes() {
  // VmHWM, not getrusage: a process started by posix_spawn/vfork inherits its parent's maximum across exec.
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;  // "VmHWM:   1234 kB"
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

}  // namespace jagged
