// core::huge_page_tensor: counted like any tensor, 64-byte aligned, no two tensors overlapping, its own chunk
// starting on a huge page, and the memory advised onto huge pages (the mapping's "hg" flag in /proc/self/smaps).
#include "core/huge_pages.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "jagged/error.h"
#include "jagged/memory.h"
#include "testing/smaps.h"

namespace jagged {
namespace {

constexpr uintptr_t kHugePage = uintptr_t{2} << 20;

TEST(HugePages, TensorsAreCountedAlignedAndApart) {
  const MemoryStats before = memory_stats();
  {
    std::vector<Tensor> tensors;
    const std::vector<int64_t> sizes{100000, 1, 64, 3 << 20, 777, 5 << 20};
    for (const int64_t size : sizes) tensors.push_back(core::huge_page_tensor({size}, DType::u8));
    EXPECT_EQ(memory_stats().current_bytes - before.current_bytes, 100000 + 1 + 64 + (3 << 20) + 777 + (5 << 20));
    EXPECT_EQ(memory_stats().allocations - before.allocations, static_cast<int64_t>(sizes.size()));
    for (size_t i = 0; i < tensors.size(); ++i) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(tensors[i].raw_data()) % 64, 0u) << "tensor " << i;
      EXPECT_EQ(tensors[i].nbytes(), static_cast<size_t>(sizes[i]));
      std::memset(tensors[i].raw_data(), static_cast<int>(i + 1), tensors[i].nbytes());
    }
    // Every tensor still holds its own bytes: none was carved over another.
    for (size_t i = 0; i < tensors.size(); ++i) {
      const auto* bytes = static_cast<const unsigned char*>(tensors[i].raw_data());
      for (size_t j = 0; j < tensors[i].nbytes(); j += 4093) ASSERT_EQ(bytes[j], i + 1) << "tensor " << i;
      ASSERT_EQ(bytes[tensors[i].nbytes() - 1], i + 1) << "tensor " << i;
    }
    const Tensor floats = core::huge_page_tensor({3, 5});
    EXPECT_EQ(floats.dtype(), DType::f32);
    EXPECT_EQ(floats.nbytes(), 60u);
  }
  EXPECT_EQ(memory_stats().current_bytes, before.current_bytes);
  EXPECT_EQ(core::huge_page_tensor({0}, DType::u8).nbytes(), 0u);
  EXPECT_THROW(core::huge_page_tensor({-1}, DType::u8), InvalidArgument);
}

TEST(HugePages, OwnChunkStartsOnAHugePageAndIsAdvised) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "under AddressSanitizer huge_page_tensor makes ordinary allocations";
#else
  const Tensor small = core::huge_page_tensor({1000}, DType::u8);  // shares a chunk
  const Tensor own = core::huge_page_tensor({3 << 20}, DType::u8, true);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(own.raw_data()) % kHugePage, 0u);
  if (!std::filesystem::exists("/sys/kernel/mm/transparent_hugepage/enabled")) {
    GTEST_SKIP() << "this kernel has no transparent huge pages";
  }
  for (const void* address : {small.raw_data(), own.raw_data()}) {
    const std::string flags = testing::smaps_field(address, "VmFlags:");
    ASSERT_FALSE(flags.empty()) << "no mapping in /proc/self/smaps holds " << address;
    EXPECT_NE((flags + " ").find(" hg "), std::string::npos) << "not advised onto huge pages: " << flags;
  }
#endif
}

}  // namespace
}  // namespace jagged
