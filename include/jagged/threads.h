// Threads: jagged and its GEMM library (oneDNN, built on OpenMP) share one OpenMP pool, so the two never
// oversubscribe the cores. Work is split per sequence / head / tile, never by a reduction whose order would
// depend on the batch: each sequence's result is the same whatever else shares its batch.
#pragma once

namespace jagged {

int num_threads();                // threads used by parallel regions
void set_num_threads(int count);  // <= 0: all cores
int num_cores();                  // the cores this process may run on (more threads only take turns)

}  // namespace jagged
