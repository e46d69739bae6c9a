// What this machine can do, measured: the fp32 FMA peak that benchmarks report their GFLOP/s against, and the
// memory read bandwidth that a decode step (which streams every weight once) is compared with.
#pragma once

#include <cstdint>

namespace jagged {

// GFLOP/s of a register-only fp32 FMA loop (widest SIMD, independent accumulators) on `threads` threads
// (<= 0: all). Takes about `seconds`.
double measure_fp32_peak_gflops(int threads = 0, double seconds = 0.2);

// Bytes/s of reading a buffer of `bytes` (far larger than any cache) on `threads` threads (<= 0: all), each
// thread summing its own slice with SIMD loads; the best of `passes` full reads after one warm-up read.
double measure_memory_read_bandwidth(int threads = 0, int64_t bytes = int64_t{512} << 20, int passes = 5);

// The same measurement, repeatable on one buffer allocated and touched once: measuring between other work then
// maps no new memory (on this VM, a fresh 256 MB buffer a measurement left the decode steps that followed 25%
// slower for as long as the measurements went on).
class MemoryReadProbe {
 public:
  MemoryReadProbe(int threads = 0, int64_t bytes = int64_t{512} << 20);
  ~MemoryReadProbe();
  MemoryReadProbe(const MemoryReadProbe&) = delete;
  MemoryReadProbe& operator=(const MemoryReadProbe&) = delete;
  // The best of `passes` full reads after one warm-up read, in bytes/s.
  double measure(int passes = 5) const;

 private:
  int team_;
  int64_t slice_;  // floats per thread
  float* buffer_;
};

}  // namespace jagged
