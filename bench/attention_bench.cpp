// Attention on the study's workload (32 sequences of ../shared/workloads/study-32.txt; 9 heads, 3 kv heads,
// head_dim 64): the fused nested kernel against the padded formulation frameworks use, causal and bidirectional.
//   build-<name>/bench/attention_bench --benchmark_format=json
// Counters: GFLOP/s counted with 4 * head_dim FLOPs per score pair (Q.K^T and P.V), both over the pairs each path
// itself evaluates (gflops_visited) and over the real pairs (gflops_real); the pair counts (summed over heads);
// peak_scratch_bytes, the most memory a call allocates beyond its inputs and outputs (the fused kernel's
// non-Tensor workspace included). The label says where the lengths came from.
//   BM_AttentionPaddedWarm: the padded kernel on a reused score workspace (no allocation, no page faults).
//   BM_FusedVsPadded: both paths alternately in the same iterations (warm: 1 against PaddedWarm), with their
//     speedup, pair_ratio (padded pairs / fused pairs) and speedup_target = 0.8 x pair_ratio.
//   BM_FmaPeak: this machine's fp32 FMA peak, a register-only loop on all threads.
//   BM_AttentionFusedUniform: uniform batches of one length, to see efficiency against length.
#include <benchmark/benchmark.h>

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <hwy/highway.h>

#include "jagged/kv_cache.h"
#include "jagged/memory.h"
#include "jagged/nested_tensor.h"
#include "jagged/ops.h"
#include "kernels/attention.h"

namespace {
namespace hn = hwy::HWY_NAMESPACE;
using namespace jagged;

constexpr int kHeads = 9;
constexpr int kKvHeads = 3;
constexpr int kHeadDim = 64;

// The study's lengths; the file is the source of truth, this copy the fallback when ../shared is absent.
std::vector<int64_t> study_lengths(std::string& source) {
  std::ifstream file(std::string(JAGGED_SOURCE_DIR) + "/../shared/workloads/study-32.txt");
  std::vector<int64_t> lengths;
  for (int64_t length = 0; file >> length;) lengths.push_back(length);
  source = "study-32.txt";
  if (lengths.empty()) {
    std::fprintf(stderr, "attention_bench: ../shared/workloads/study-32.txt not found, using the built-in copy\n");
    source = "study-32 built-in copy (file absent)";
    lengths = {109, 63, 243, 13, 217, 16, 31, 187, 20, 28, 214, 230, 113, 58, 173, 174,
               198, 229, 48, 153, 189, 11, 185, 44, 79, 32, 127, 244, 250, 50, 71, 161};
  }
  return lengths;
}

Tensor random_matrix(int64_t rows, int64_t cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  Tensor tensor({rows, cols});
  for (int64_t i = 0; i < tensor.numel(); ++i) tensor.data<float>()[i] = dist(rng);
  return tensor;
}

// One study batch in both layouts: a fused QKV projection [rows, (heads + 2 kv heads) * head_dim] and out.
struct Workload {
  std::string source;
  std::vector<int64_t> lengths = study_lengths(source);
  std::vector<int32_t> cu_seqlens = cu_seqlens_from_lengths(lengths);
  int64_t batch = static_cast<int64_t>(lengths.size());
  int64_t max_seqlen = 0;
  int64_t qkv_cols = int64_t{kHeads + 2 * kKvHeads} * kHeadDim;
  Tensor packed_qkv, packed_out, padded_qkv, padded_out, mask;

  Workload() {
    for (const int64_t length : lengths) max_seqlen = std::max(max_seqlen, length);
    packed_qkv = random_matrix(cu_seqlens.back(), qkv_cols, 1);
    packed_out = Tensor({cu_seqlens.back(), int64_t{kHeads} * kHeadDim});
    padded_qkv = random_matrix(batch * max_seqlen, qkv_cols, 2);
    padded_out = Tensor({batch * max_seqlen, int64_t{kHeads} * kHeadDim});
    mask = Tensor::zeros({batch, max_seqlen}, DType::u8);
    for (int64_t b = 0; b < batch; ++b) std::fill_n(mask.data<uint8_t>() + b * max_seqlen, lengths[b], uint8_t{1});
  }

  static ConstMatrixView band(const Tensor& qkv, int64_t first_head, int64_t heads) {
    return qkv.matrix().columns(first_head * kHeadDim, (first_head + heads) * kHeadDim);
  }
  void run_fused(const ops::AttentionConfig& config) {
    ops::attention(band(packed_qkv, 0, kHeads), band(packed_qkv, kHeads, kKvHeads),
                   band(packed_qkv, kHeads + kKvHeads, kKvHeads), packed_out.matrix(), cu_seqlens, config);
  }
  void run_padded(const ops::AttentionConfig& config) {
    ops::attention_padded(band(padded_qkv, 0, kHeads), band(padded_qkv, kHeads, kKvHeads),
                          band(padded_qkv, kHeads + kKvHeads, kKvHeads), padded_out.matrix(), batch, max_seqlen, mask,
                          config);
  }
  // The same through the kernel with a reused, already touched score workspace: no allocation, no page faults
  // (a caching allocator's best case).
  void run_padded_warm(const ops::AttentionConfig& config) {
    if (!workspace.defined()) workspace = Tensor::zeros({batch, kHeads, max_seqlen, max_seqlen});
    const float scale = config.scale > 0.0f ? config.scale : 1.0f / std::sqrt(static_cast<float>(kHeadDim));
    kernels::cpu::attention_padded(band(padded_qkv, 0, kHeads), band(padded_qkv, kHeads, kKvHeads),
                                   band(padded_qkv, kHeads + kKvHeads, kKvHeads), padded_out.matrix(), batch,
                                   max_seqlen, mask.data<uint8_t>(),
                                   {kHeads, kKvHeads, kHeadDim, scale, config.causal}, workspace.data<float>());
  }
  Tensor workspace;

  int64_t real_pairs(bool causal) const {
    int64_t pairs = 0;
    for (const int64_t length : lengths) pairs += causal ? length * (length + 1) / 2 : length * length;
    return pairs * kHeads;
  }
  int64_t padded_pairs() const { return batch * max_seqlen * max_seqlen * kHeads; }  // all computed, then masked
  static kernels::AttentionParams params(bool causal) { return {kHeads, kKvHeads, kHeadDim, 0.125f, causal}; }
  int64_t fused_pairs(bool causal) const { return kernels::cpu::attention_score_pairs(cu_seqlens, params(causal)); }
};

Workload& workload() {
  static Workload instance;
  return instance;
}

constexpr double kFlopsPerPair = 4.0 * kHeadDim;

void report(benchmark::State& state, int64_t visited_pairs, int64_t real_pairs, int64_t scratch_bytes) {
  const double iterations = static_cast<double>(state.iterations());
  state.counters["gflops_visited"] =
      benchmark::Counter(kFlopsPerPair * visited_pairs * iterations * 1e-9, benchmark::Counter::kIsRate);
  state.counters["gflops_real"] =
      benchmark::Counter(kFlopsPerPair * real_pairs * iterations * 1e-9, benchmark::Counter::kIsRate);
  state.counters["visited_pairs"] = static_cast<double>(visited_pairs);
  state.counters["real_pairs"] = static_cast<double>(real_pairs);
  state.counters["peak_scratch_bytes"] = static_cast<double>(scratch_bytes);
  state.counters["threads"] = omp_get_max_threads();
}

template <typename Run>
int64_t scratch_bytes_of(Run&& run) {
  const int64_t before = memory_stats().current_bytes;
  reset_peak_memory();
  run();
  return memory_stats().peak_bytes - before;
}

void BM_AttentionFused(benchmark::State& state) {
  const bool causal = state.range(0) != 0;
  const ops::AttentionConfig config{kHeads, kKvHeads, kHeadDim, 0.0f, causal};
  Workload& w = workload();
  state.SetLabel(w.source);
  const int64_t scratch = scratch_bytes_of([&] { w.run_fused(config); }) +
                          kernels::cpu::attention_workspace_bytes(w.cu_seqlens, w.params(causal));
  for (auto _ : state) w.run_fused(config);
  report(state, w.fused_pairs(causal), w.real_pairs(causal), scratch);
}

void BM_AttentionPadded(benchmark::State& state) {
  const bool causal = state.range(0) != 0;
  const ops::AttentionConfig config{kHeads, kKvHeads, kHeadDim, 0.0f, causal};
  Workload& w = workload();
  state.SetLabel(w.source);
  const int64_t scratch = scratch_bytes_of([&] { w.run_padded(config); });
  for (auto _ : state) w.run_padded(config);
  report(state, w.padded_pairs(), w.real_pairs(causal), scratch);
}

void BM_AttentionPaddedWarm(benchmark::State& state) {
  const bool causal = state.range(0) != 0;
  const ops::AttentionConfig config{kHeads, kKvHeads, kHeadDim, 0.0f, causal};
  Workload& w = workload();
  state.SetLabel(w.source);
  w.run_padded_warm(config);
  for (auto _ : state) w.run_padded_warm(config);
  report(state, w.padded_pairs(), w.real_pairs(causal), w.workspace.nbytes());
}

// Both paths alternately, timed separately, so that a noisy neighbour slows both alike. warm: 1 compares with the
// padded path on a reused score workspace (the stronger baseline), 0 with the op as frameworks run it.
void BM_FusedVsPadded(benchmark::State& state) {
  const bool causal = state.range(0) != 0;
  const bool warm = state.range(1) != 0;
  const ops::AttentionConfig config{kHeads, kKvHeads, kHeadDim, 0.0f, causal};
  Workload& w = workload();
  state.SetLabel(w.source);
  using Clock = std::chrono::steady_clock;
  double fused_seconds = 0.0;
  double padded_seconds = 0.0;
  for (auto _ : state) {
    const auto start = Clock::now();
    w.run_fused(config);
    const auto middle = Clock::now();
    if (warm) {
      w.run_padded_warm(config);
    } else {
      w.run_padded(config);
    }
    fused_seconds += std::chrono::duration<double>(middle - start).count();
    padded_seconds += std::chrono::duration<double>(Clock::now() - middle).count();
  }
  const double iterations = static_cast<double>(state.iterations());
  const double pair_ratio = static_cast<double>(w.padded_pairs()) / static_cast<double>(w.fused_pairs(causal));
  state.counters["fused_ms"] = fused_seconds / iterations * 1e3;
  state.counters["padded_ms"] = padded_seconds / iterations * 1e3;
  state.counters["speedup"] = padded_seconds / fused_seconds;
  state.counters["pair_ratio"] = pair_ratio;
  state.counters["speedup_target"] = 0.8 * pair_ratio;
  state.counters["fused_gflops_visited"] = kFlopsPerPair * w.fused_pairs(causal) * iterations / fused_seconds * 1e-9;
  state.counters["padded_gflops_visited"] = kFlopsPerPair * w.padded_pairs() * iterations / padded_seconds * 1e-9;
}

// Uniform batches (num_seqs sequences of `length`), to see how the fused kernel's efficiency varies with length.
void BM_AttentionFusedUniform(benchmark::State& state) {
  const int64_t length = state.range(0);
  const bool causal = state.range(1) != 0;
  const int64_t num_seqs = std::max<int64_t>(2, 4096 / length);
  const std::vector<int64_t> lengths(static_cast<size_t>(num_seqs), length);
  const std::vector<int32_t> cu_seqlens = cu_seqlens_from_lengths(lengths);
  const int64_t qkv_cols = int64_t{kHeads + 2 * kKvHeads} * kHeadDim;
  const Tensor qkv = random_matrix(cu_seqlens.back(), qkv_cols, 3);
  Tensor out({cu_seqlens.back(), int64_t{kHeads} * kHeadDim});
  const ops::AttentionConfig config{kHeads, kKvHeads, kHeadDim, 0.0f, causal};
  for (auto _ : state) {
    ops::attention(Workload::band(qkv, 0, kHeads), Workload::band(qkv, kHeads, kKvHeads),
                   Workload::band(qkv, kHeads + kKvHeads, kKvHeads), out.matrix(), cu_seqlens, config);
  }
  const int64_t real = num_seqs * kHeads * (causal ? length * (length + 1) / 2 : length * length);
  report(state, kernels::cpu::attention_score_pairs(cu_seqlens, {kHeads, kKvHeads, kHeadDim, 0.125f, causal}), real, 0);
}

// fp32 FMA peak: every thread runs independent chains of vector FMAs held in registers.
void BM_FmaPeak(benchmark::State& state) {
  constexpr int64_t kSteps = 1 << 20;
  constexpr size_t kChains = 16;
  const hn::ScalableTag<float> d;
  double flops = 0.0;
  for (auto _ : state) {
    int threads = 1;
    float sink = 0.0f;
#pragma omp parallel reduction(+ : sink)
    {
#pragma omp single
      threads = omp_get_num_threads();
      auto acc = hn::Set(d, 1.0f);
      const auto mul = hn::Set(d, 0.999999f);
      const auto add = hn::Set(d, 1e-7f);
      decltype(acc) chains[kChains];
      for (size_t c = 0; c < kChains; ++c) chains[c] = hn::Add(acc, hn::Set(d, static_cast<float>(c)));
      for (int64_t step = 0; step < kSteps; ++step) {
        for (size_t c = 0; c < kChains; ++c) chains[c] = hn::MulAdd(chains[c], mul, add);
      }
      for (size_t c = 0; c < kChains; ++c) acc = hn::Add(acc, chains[c]);
      sink += hn::GetLane(acc);
    }
    benchmark::DoNotOptimize(sink);
    flops += 2.0 * static_cast<double>(hn::Lanes(d) * kChains) * kSteps * threads;
  }
  state.counters["gflops"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsRate);
}

// Rates use wall time. The CPU column is the process's CPU time (all threads): on a machine shared with other jobs,
// CPU time / threads estimates the wall time the run would take with the cores to itself.
BENCHMARK(BM_AttentionFused)
    ->ArgName("causal")
    ->Arg(1)
    ->Arg(0)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime();
BENCHMARK(BM_AttentionPadded)
    ->ArgName("causal")
    ->Arg(1)
    ->Arg(0)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime();
BENCHMARK(BM_AttentionPaddedWarm)
    ->ArgName("causal")
    ->Arg(1)
    ->Arg(0)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime();
BENCHMARK(BM_FusedVsPadded)
    ->ArgNames({"causal", "warm"})
    ->ArgsProduct({{1, 0}, {1, 0}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_AttentionFusedUniform)
    ->ArgNames({"length", "causal"})
    ->ArgsProduct({{16, 64, 256, 1024}, {1, 0}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_FmaPeak)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();

}  // namespace


// Decode over a paged KV cache: `seqs` sequences of `context` cached keys each add one query row; the cache
// (jagged::KvCache, its grouped layout on huge pages) holds `layers` layers, its blocks handed out shuffled, and
// each iteration runs the next layer: with 30 (SmolLM-135M's depth) K and V come from memory as in a real decode
// step, with 1 from the caches. Counter kv_gbytes_per_second: K and V bytes read per second.
void BM_PagedDecode(benchmark::State& state) {
  const int64_t seqs = state.range(0);
  const int64_t context = state.range(1);
  const int64_t kLayers = state.range(2);
  const DType dtype = state.range(3) == 16 ? DType::bf16 : DType::f32;  // the cache's element bits
  const int64_t block_tokens = ops::kv_block_tokens();
  const int64_t blocks_per_seq = (context + 1 + block_tokens - 1) / block_tokens;
  const int64_t num_blocks = seqs * blocks_per_seq;
  LlamaConfig shape;
  shape.num_layers = static_cast<int>(kLayers);
  shape.num_heads = kHeads;
  shape.num_kv_heads = kKvHeads;
  shape.head_dim = kHeadDim;
  const KvCache kv_cache(shape, num_blocks * block_tokens, dtype);
  std::vector<int32_t> tables(static_cast<size_t>(num_blocks));
  for (int64_t i = 0; i < num_blocks; ++i) tables[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  std::shuffle(tables.begin(), tables.end(), std::mt19937_64(7));
  std::vector<int32_t> cu_seqlens, contexts, offsets;
  for (int64_t s = 0; s <= seqs; ++s) {
    cu_seqlens.push_back(static_cast<int32_t>(s));
    offsets.push_back(static_cast<int32_t>(s * blocks_per_seq));
  }
  contexts.assign(static_cast<size_t>(seqs), static_cast<int32_t>(context));
  const PagedKvBatch batch{cu_seqlens, contexts, tables, offsets, num_blocks};
  const ops::AttentionConfig config{kHeads, kKvHeads, kHeadDim, 0.0f, true};
  {  // every layer's cached keys written first, as prefill leaves them
    std::vector<int32_t> fill_cu{0}, no_context(static_cast<size_t>(seqs), 0);
    for (int64_t s = 0; s < seqs; ++s) fill_cu.push_back(fill_cu.back() + static_cast<int32_t>(context));
    const Tensor fill = random_matrix(seqs * context, kKvHeads * kHeadDim, 3);
    for (int layer = 0; layer < kLayers; ++layer) {
      ops::paged_kv_write(fill.matrix(), fill.matrix(), {fill_cu, no_context, tables, offsets, num_blocks},
                          kv_cache.layer(layer), config);
    }
  }
  Tensor q = random_matrix(seqs, kHeads * kHeadDim, 1);
  Tensor kv = random_matrix(seqs, kKvHeads * kHeadDim, 2);
  Tensor out({seqs, kHeads * kHeadDim});
  std::vector<std::byte> workspace(static_cast<size_t>(
      ops::paged_attention_workspace_bytes(config, omp_get_max_threads()) + 64));
  const std::span<std::byte> scratch(reinterpret_cast<std::byte*>((reinterpret_cast<uintptr_t>(workspace.data()) + 63) / 64 * 64),
                                     workspace.size() - 64);
  int layer = 0;
  for (auto _ : state) {
    const PagedKvLayer cache = kv_cache.layer(layer);
    ops::paged_kv_write(kv.matrix(), kv.matrix(), batch, cache, config);
    ops::paged_attention(q.matrix(), out.matrix(), batch, cache, config, scratch);
    layer = (layer + 1) % kLayers;
  }
  const double bytes = 2.0 * seqs * (context + 1) * kKvHeads * kHeadDim * static_cast<double>(dtype_size(dtype));
  state.counters["kv_gbytes_per_second"] =
      benchmark::Counter(bytes * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.counters["us_per_seq"] = benchmark::Counter(static_cast<double>(seqs), benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_PagedDecode)->ArgNames({"seqs", "context", "layers", "bits"})->ArgsProduct({{1, 32}, {160, 1000}, {1, 30}, {32, 16}})->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
