// Memory accounting: every Tensor allocation goes through one allocator that records current and peak bytes,
// so benchmarks can report the peak activation memory of a padded run against a nested one.
#pragma once

#include <cstdint>

namespace jagged {

struct MemoryStats {
  int64_t current_bytes = 0;   // bytes held by live tensors now
  int64_t peak_bytes = 0;      // most bytes held at once since the last reset_peak_memory()
  int64_t allocations = 0;     // allocations since start (for "a forward allocates nothing per layer" checks)
};

MemoryStats memory_stats();

// Starts a new peak measurement: peak := current.
void reset_peak_memory();

// This process's peak resident set so far (getrusage), in bytes: weights, mappings and everything else.
int64_t process_peak_rss_bytes();

}  // namespace jagged
