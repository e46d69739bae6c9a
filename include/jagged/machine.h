// What this machine can do, measured: the fp32 FMA peak that benchmarks report their GFLOP/s against.
#pragma once

namespace jagged {

// GFLOP/s of a register-only fp32 FMA loop (widest SIMD, independent accumulators) on `threads` threads
// (<= 0: all). Takes about `seconds`.
double measure_fp32_peak_gflops(int threads = 0, double seconds = 0.2);

}  // namespace jagged
