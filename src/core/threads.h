// parallel_for over [0, count): dynamic scheduling so very unequal items (long vs short sequences) balance.
#pragma once

#include <cstdint>

#include "jagged/threads.h"

namespace jagged::core {

template <typename Body>
void parallel_for(int64_t count, Body&& body) {
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t i = 0; i < count; ++i) body(i);
}

// Static contiguous chunks, for cheap uniform rows (norms, elementwise): one chunk per thread.
template <typename Body>
void parallel_rows(int64_t rows, int64_t min_rows_per_chunk, Body&& body) {
  const int64_t threads = num_threads();
  int64_t chunks = rows / (min_rows_per_chunk > 0 ? min_rows_per_chunk : 1);
  if (chunks > threads) chunks = threads;
  if (chunks <= 1) {
    if (rows > 0) body(int64_t{0}, rows);
    return;
  }
#pragma omp parallel for schedule(static, 1)
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    body(rows * chunk / chunks, rows * (chunk + 1) / chunks);
  }
}

}  // namespace jagged::core
