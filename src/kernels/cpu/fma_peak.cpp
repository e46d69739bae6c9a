// A register-only FMA loop: 16 independent accumulators hide the FMA latency, so the loop runs at the
// core's FMA throughput, the ceiling every kernel's GFLOP/s is compared with.
#include <omp.h>

#include <chrono>

#include <hwy/highway.h>

#include "jagged/machine.h"

namespace jagged {
namespace hn = hwy::HWY_NAMESPACE;
namespace {

// Returns FLOPs done; `sink` keeps the compiler from removing the loop.
double fma_loop(int64_t iterations, float* sink) {
  const hn::ScalableTag<float> d;
  const auto multiplier = hn::Set(d, 0.999999f);
  const auto addend = hn::Set(d, 1e-7f);
  // Distinct starting values: identical accumulators would let the compiler merge them into one chain.
  auto start = [&](int i) { return hn::Set(d, 1.0f + 0.001f * static_cast<float>(i)); };
  auto a0 = start(0), a1 = start(1), a2 = start(2), a3 = start(3), a4 = start(4), a5 = start(5), a6 = start(6);
  auto a7 = start(7), a8 = start(8), a9 = start(9), a10 = start(10), a11 = start(11), a12 = start(12);
  auto a13 = start(13), a14 = start(14), a15 = start(15);
  for (int64_t i = 0; i < iterations; ++i) {
    a0 = hn::MulAdd(a0, multiplier, addend); a1 = hn::MulAdd(a1, multiplier, addend);
    a2 = hn::MulAdd(a2, multiplier, addend); a3 = hn::MulAdd(a3, multiplier, addend);
    a4 = hn::MulAdd(a4, multiplier, addend); a5 = hn::MulAdd(a5, multiplier, addend);
    a6 = hn::MulAdd(a6, multiplier, addend); a7 = hn::MulAdd(a7, multiplier, addend);
    a8 = hn::MulAdd(a8, multiplier, addend); a9 = hn::MulAdd(a9, multiplier, addend);
    a10 = hn::MulAdd(a10, multiplier, addend); a11 = hn::MulAdd(a11, multiplier, addend);
    a12 = hn::MulAdd(a12, multiplier, addend); a13 = hn::MulAdd(a13, multiplier, addend);
    a14 = hn::MulAdd(a14, multiplier, addend); a15 = hn::MulAdd(a15, multiplier, addend);
  }
  auto sum = hn::Add(hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)), hn::Add(hn::Add(a4, a5), hn::Add(a6, a7)));
  sum = hn::Add(sum, hn::Add(hn::Add(hn::Add(a8, a9), hn::Add(a10, a11)), hn::Add(hn::Add(a12, a13), hn::Add(a14, a15))));
  *sink += hn::GetLane(sum);
  return 2.0 * 16.0 * static_cast<double>(hn::Lanes(d)) * static_cast<double>(iterations);
}

}  // namespace

double measure_fp32_peak_gflops(int threads, double seconds) {
  const int team = threads > 0 ? threads : omp_get_num_procs();
  // Calibrate once: iterations that take about `seconds`.
  float sink = 0.0f;
  int64_t iterations = 1 << 20;
  for (;;) {
    const auto start = std::chrono::steady_clock::now();
    fma_loop(iterations, &sink);
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (elapsed > seconds / 4 || iterations > (int64_t{1} << 36)) break;
    iterations *= 2;
  }
  double flops = 0.0;
  const auto start = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(team) reduction(+ : flops)
  {
    float local = 0.0f;
    flops += fma_loop(iterations * 2, &local);
    if (local == 12345.0f) sink += local;
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return sink == -1.0f ? 0.0 : flops / elapsed * 1e-9;
}

}  // namespace jagged
