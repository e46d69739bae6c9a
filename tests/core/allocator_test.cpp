#include "core/allocator.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>

#include "jagged/memory.h"
#include "jagged/tensor.h"

namespace jagged {
namespace {

TEST(Allocator, CurrentBytesTrackLiveTensors) {
  const MemoryStats before = memory_stats();
  {
    const Tensor a({100, 10});       // 4000 bytes
    const Tensor b({7}, DType::u8);  // 7 bytes: accounted as requested, not as the padded block
    const MemoryStats during = memory_stats();
    EXPECT_EQ(during.current_bytes - before.current_bytes, 4007);
    EXPECT_EQ(during.allocations - before.allocations, 2);
    Tensor moved = Tensor({50}, DType::i32);  // a move hands over the block: counted once
    Tensor target = std::move(moved);
    EXPECT_EQ(memory_stats().current_bytes - before.current_bytes, 4007 + 200);
    const Tensor copy = a.clone();
    EXPECT_EQ(memory_stats().current_bytes - before.current_bytes, 8007 + 200);
  }
  EXPECT_EQ(memory_stats().current_bytes, before.current_bytes);
}

TEST(Allocator, PeakAndReset) {
  reset_peak_memory();
  const MemoryStats start = memory_stats();
  EXPECT_EQ(start.peak_bytes, start.current_bytes);
  {
    const Tensor big({1000, 100});  // 400000 bytes
    EXPECT_GE(memory_stats().peak_bytes, start.current_bytes + 400000);
  }
  {
    const Tensor small({10});
    // The peak remembers the big tensor although it is gone.
    EXPECT_EQ(memory_stats().peak_bytes, start.current_bytes + 400000);
  }
  reset_peak_memory();
  EXPECT_EQ(memory_stats().peak_bytes, memory_stats().current_bytes);
  {
    const Tensor a({250});  // 1000 bytes
    const Tensor b({250});
    EXPECT_EQ(memory_stats().peak_bytes, start.current_bytes + 2000);
  }
  EXPECT_EQ(memory_stats().peak_bytes, start.current_bytes + 2000);
}

TEST(Allocator, BorrowedMemoryIsNotCounted) {
  auto owner = std::make_shared<std::vector<float>>(1000, 1.0f);
  const MemoryStats before = memory_stats();
  {
    const Tensor view = Tensor::borrow(owner, owner->data(), {10, 100}, DType::f32);
    EXPECT_EQ(memory_stats().current_bytes, before.current_bytes);
    EXPECT_EQ(memory_stats().allocations, before.allocations);
    EXPECT_EQ(owner.use_count(), 2);  // the tensor keeps its owner alive
    EXPECT_EQ(view.data<float>()[999], 1.0f);
  }
  EXPECT_EQ(owner.use_count(), 1);
}

TEST(Allocator, AlignedBlocksAndEmptyRequests) {
  void* empty_a = core::allocate_bytes(0);
  void* empty_b = core::allocate_bytes(0);
  EXPECT_NE(empty_a, nullptr);
  EXPECT_NE(empty_a, empty_b);  // unique pointers
  void* block = core::allocate_bytes(100);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(block) % core::kTensorAlignment, 0u);
  core::free_bytes(block, 100);
  core::free_bytes(empty_a, 0);
  core::free_bytes(empty_b, 0);
  core::free_bytes(nullptr, 0);  // no-op
  const Tensor empty({0, 5});
  EXPECT_NE(empty.raw_data(), nullptr);
  EXPECT_EQ(empty.nbytes(), 0u);
}

}  // namespace
}  // namespace jagged
