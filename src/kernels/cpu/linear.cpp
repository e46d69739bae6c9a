#include "kernels/linear.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include <oneapi/dnnl/dnnl.h>

#include "core/threads.h"
#include "jagged/error.h"
#include "kernels/cpu/vector_math.h"

namespace jagged::kernels::cpu {

namespace {

constexpr int64_t kAlignFloats = 16;  // 64 bytes

int64_t round_up(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

// Per-thread scratch for one block: x rows [block_rows, in_features] and results [block_rows, out_features].
// Kept by the calling thread and grown on demand, so repeated calls (a forward pass) allocate nothing.
class BlockScratch {
 public:
  void reserve(int64_t threads, int64_t block_rows, int64_t in_features, int64_t out_features) {
    x_floats_ = round_up(block_rows * in_features, kAlignFloats);
    out_floats_ = round_up(block_rows * out_features, kAlignFloats);
    const auto wanted = static_cast<size_t>(threads * (x_floats_ + out_floats_) + kAlignFloats);
    if (storage_.size() < wanted) storage_.resize(wanted);
    // Start at a 64-byte boundary (std::vector only promises alignof(float)).
    const auto address = static_cast<int64_t>(reinterpret_cast<uintptr_t>(storage_.data()));
    const int64_t align_bytes = kAlignFloats * static_cast<int64_t>(sizeof(float));
    base_ = storage_.data() + (round_up(address, align_bytes) - address) / static_cast<int64_t>(sizeof(float));
  }
  float* x(int thread) const { return base_ + thread * (x_floats_ + out_floats_); }
  float* out(int thread) const { return x(thread) + x_floats_; }

 private:
  std::vector<float> storage_;
  float* base_ = nullptr;
  int64_t x_floats_ = 0;
  int64_t out_floats_ = 0;
};

}  // namespace

void linear_blocked(ConstMatrixView x, const float* weight, const float* bias, MatrixView out, int64_t block_rows) {
  const int64_t rows = x.rows;
  const int64_t in_features = x.cols;
  const int64_t out_features = out.cols;
  if (rows == 0 || out_features == 0) return;
  if (in_features == 0) {  // an empty sum: out = bias
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t o = 0; o < out_features; ++o) out.row(r)[o] = bias != nullptr ? bias[o] : 0.0f;
    }
    return;
  }
  const int64_t blocks = (rows + block_rows - 1) / block_rows;
  const int threads = std::max(1, num_threads());
  // The calling thread's scratch, sliced per worker (a thread_local named inside the region would be the
  // worker's own, empty one).
  thread_local BlockScratch caller_scratch;
  caller_scratch.reserve(threads, block_rows, in_features, out_features);
  const BlockScratch& scratch = caller_scratch;

  std::atomic<int> failure{dnnl_success};
  // A full block of a dense x is read in place, and a dense out written in place: the call is the same
  // (lda = in_features, ldc = out_features), only the addresses differ. Otherwise (a strided view, the last
  // partial block) the rows go through the scratch, zero-padded to block_rows.
  const bool dense_x = x.row_stride == in_features || rows == 1;
  const bool dense_out = out.row_stride == out_features || rows == 1;
  const auto run_block = [&](int64_t block, int thread) {
    const int64_t row_begin = block * block_rows;
    const int64_t count = std::min(block_rows, rows - row_begin);
    const bool full = count == block_rows;
    const float* x_block = x.row(row_begin);
    if (!full || !dense_x) {
      float* copy = scratch.x(thread);
      const size_t row_bytes = static_cast<size_t>(in_features) * sizeof(float);
      for (int64_t r = 0; r < count; ++r) std::memcpy(copy + r * in_features, x.row(row_begin + r), row_bytes);
      std::fill(copy + count * in_features, copy + block_rows * in_features, 0.0f);
      x_block = copy;
    }
    float* out_block = full && dense_out ? out.row(row_begin) : scratch.out(thread);
    const dnnl_status_t status = dnnl_sgemm('N', 'T', block_rows, out_features, in_features, 1.0f, x_block, in_features,
                                            weight, in_features, 0.0f, out_block, out_features);
    if (status != dnnl_success) {
      failure.store(status);
      return;
    }
    for (int64_t r = 0; r < count; ++r) {
      const float* result = out_block + r * out_features;
      float* target = out.row(row_begin + r);
      if (bias != nullptr) {
        vec::transform2(result, bias, target, out_features,
                        [](vec::FloatVec a, vec::FloatVec b) { return vec::hn::Add(a, b); });
      } else if (result != target) {
        std::memcpy(target, result, static_cast<size_t>(out_features) * sizeof(float));
      }
    }
  };
  if (threads == 1) {
    for (int64_t block = 0; block < blocks; ++block) run_block(block, 0);
  } else {
    // Even for a single block we enter the region: inside it oneDNN sees omp_in_parallel() and stays on one
    // thread, so its path never depends on how many blocks there are.
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t block = 0; block < blocks; ++block) run_block(block, omp_get_thread_num());
  }
  if (failure.load() != dnnl_success) {
    throw Error(concat("linear: oneDNN sgemm failed with status ", failure.load(), " for x [", rows, ", ", in_features,
                       "] and weight [", out_features, ", ", in_features, "]"));
  }
}

void linear(ConstMatrixView x, const float* weight, const float* bias, MatrixView out) {
  linear_blocked(x, weight, bias, out, kGemmBlockRows);
}

}  // namespace jagged::kernels::cpu
