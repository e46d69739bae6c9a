// Memory read bandwidth: every thread streams its own slice of a buffer far larger than the caches, as the
// weights stream through a decode step. Independent accumulators keep the loads, not the adds, the limit.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include <hwy/highway.h>

#include "jagged/error.h"
#include "jagged/machine.h"

namespace jagged {
namespace hn = hwy::HWY_NAMESPACE;
namespace {

// Sum of `count` floats (a multiple of 4 vectors); the result only keeps the compiler from dropping the loads.
float read_slice(const float* values, int64_t count) {
  const hn::ScalableTag<float> d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
  for (int64_t i = 0; i + 4 * lanes <= count; i += 4 * lanes) {
    s0 = hn::Add(s0, hn::LoadU(d, values + i));
    s1 = hn::Add(s1, hn::LoadU(d, values + i + lanes));
    s2 = hn::Add(s2, hn::LoadU(d, values + i + 2 * lanes));
    s3 = hn::Add(s3, hn::LoadU(d, values + i + 3 * lanes));
  }
  return hn::GetLane(hn::Add(hn::Add(s0, s1), hn::Add(s2, s3)));
}

}  // namespace

MemoryReadProbe::MemoryReadProbe(int threads, int64_t bytes) : team_(threads > 0 ? threads : omp_get_num_procs()) {
  if (bytes < (int64_t{1} << 20)) throw InvalidArgument(concat("bandwidth probe: buffer of ", bytes, " bytes is too small"));
  const int64_t count = bytes / static_cast<int64_t>(sizeof(float));
  slice_ = (count / team_) & ~int64_t{1023};
  const size_t rounded = (static_cast<size_t>(count) * sizeof(float) + 63) / 64 * 64;
  buffer_ = static_cast<float*>(std::aligned_alloc(64, rounded));
  if (buffer_ == nullptr) throw InvalidArgument(concat("bandwidth probe: cannot allocate ", bytes, " bytes"));
  // Touch every page, each slice by the thread that reads it later (first touch places it near that core).
#pragma omp parallel for num_threads(team_) schedule(static, 1)
  for (int part = 0; part < team_; ++part) std::fill(buffer_ + part * slice_, buffer_ + (part + 1) * slice_, 1.0f);
}

MemoryReadProbe::~MemoryReadProbe() { std::free(buffer_); }

double MemoryReadProbe::measure(int passes) const {
  if (passes < 1) throw InvalidArgument(concat("bandwidth probe: passes must be >= 1, got ", passes));
  double best = 0.0;
  float sink = 0.0f;
  for (int pass = 0; pass <= passes; ++pass) {
    const auto start = std::chrono::steady_clock::now();
    float sum = 0.0f;
#pragma omp parallel for num_threads(team_) schedule(static, 1) reduction(+ : sum)
    for (int part = 0; part < team_; ++part) sum += read_slice(buffer_ + part * slice_, slice_);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    sink += sum;
    if (pass > 0) best = std::max(best, static_cast<double>(slice_) * team_ * sizeof(float) / seconds);
  }
  return sink == -1.0f ? 0.0 : best;
}

double measure_memory_read_bandwidth(int threads, int64_t bytes, int passes) {
  if (passes < 1) throw InvalidArgument(concat("bandwidth probe: passes must be >= 1, got ", passes));
  return MemoryReadProbe(threads, bytes).measure(passes);
}

}  // namespace jagged
