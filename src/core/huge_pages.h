// Long-lived buffers that every decode step streams from memory (packed weights, the KV cache), on transparent
// huge pages.
#pragma once

#include <cstdint>

#include "jagged/tensor.h"

namespace jagged::core {

// The transparent huge page size on x86-64 (2 MiB): chunks are aligned to it, KvCache pads its groups to it.
inline constexpr int64_t kHugePageBytes = int64_t{2} << 20;

// A tensor, 64-byte aligned, uninitialised, carved from a 2 MiB-aligned chunk advised onto huge pages
// (MADV_HUGEPAGE). A decode step reads every weight once; on 4 KiB pages that walk misses the TLB every 64 cache
// lines and the hardware prefetchers stop at each page's end. Small weights share chunks, so none pays a huge
// page's rounding in resident memory; a chunk is unmapped with its last tensor. Counted by memory_stats() like
// any tensor. Where the kernel gives no huge pages (THP "never") the chunk has small ones: only slower. Under
// AddressSanitizer every buffer is an ordinary allocation, so overruns are still caught.
// own_chunk: a chunk of its own, which starts on a huge page (for a layout made of whole pages, as
// jagged::KvCache's groups) and is unmapped with it.
Tensor huge_page_tensor(Shape shape, DType dtype = DType::f32, bool own_chunk = false);

}  // namespace jagged::core
