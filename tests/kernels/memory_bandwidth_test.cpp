#include <gtest/gtest.h>

#include <cmath>

#include "jagged/error.h"
#include "jagged/machine.h"

namespace jagged {
namespace {

// A read of 16 MiB between 0.1 GB/s and 10 TB/s: the probe read the buffer, and timed it.
void expect_plausible(double bytes_per_second) {
  EXPECT_TRUE(std::isfinite(bytes_per_second));
  EXPECT_GT(bytes_per_second, 1e8);
  EXPECT_LT(bytes_per_second, 1e13);
}

TEST(MemoryReadProbe, MeasuresRepeatedlyOnOneBuffer) {
  const MemoryReadProbe probe(2, int64_t{16} << 20);
  for (int i = 0; i < 3; ++i) expect_plausible(probe.measure(1));
  expect_plausible(measure_memory_read_bandwidth(1, int64_t{16} << 20, 1));
}

TEST(MemoryReadProbe, RejectsATinyBufferOrNoPass) {
  EXPECT_THROW(MemoryReadProbe(1, 1024), InvalidArgument);
  const MemoryReadProbe probe(1, int64_t{2} << 20);
  EXPECT_THROW(probe.measure(0), InvalidArgument);
  EXPECT_THROW(measure_memory_read_bandwidth(1, int64_t{2} << 20, 0), InvalidArgument);
}

}  // namespace
}  // namespace jagged
