// Op benchmarks on the study's workload (32 sequences of ../shared/workloads/study-32.txt: 3960 real tokens,
// 8000 when padded to the longest, 250).
//   build-<name>/bench/ops_bench --benchmark_format=json --benchmark_out=ops.json
// (a) BM_FmaPeak: this machine's fp32 FMA peak, a register-only loop of independent vector FMA chains, on one
//     thread and on all (threads:0); counter gflops.
// (b) BM_SgemmPeak: the GEMM library's peak, one dnnl_sgemm of 2048^3 on all threads.
// (c) BM_LinearNestedVsPadded: ops::linear at layer shapes of SmolLM-135M (576->576, 576->2x1536 fused
//     gate_up, 1536->576) and a Llama-like model (2048->2048, 2048->5632), nested (3960 rows) against padded
//     (8000 rows), timed alternately in the same iterations; counters: gflops of each, their fraction of the
//     FMA peak (all threads, measured once at start), time_ratio = nested / padded against token_ratio =
//     3960 / 8000 and ratio_target = 1.1 x that.
//     BM_LinearVsSgemm: jagged's batch-invariant GEMM (weight packed once) against one plain multi-threaded
//     dnnl_sgemm call over the same rows (not batch-invariant).
//     BM_LinearSmallBatch: decode-sized batches, against oneDNN with the batch's own M (gemv for M = 1), and
//     with bf16 weights (mode 2); counter weight_gbytes_per_second beside memory_gbytes_per_second, the
//     machine's read bandwidth (BM_MemoryBandwidth: all threads summing a 1 GiB buffer, best of 5).
//     BM_LinearBf16VsF32: the nested batch with the weight in bf16 and in f32, alternately in the same
//     iterations; counters gflops of each, bf16_speedup; the label names the bf16 kernel path that ran.
//     BM_LinearQ8VnniVsF32: Q8_0 weights, the f32-activation and int8-activation (avx512-vnni) paths alternately
//     at prefill (3960 rows) and decode (1-32 rows) shapes; counter vnni_speedup.
//     BM_SgemmBatchInvariance: a measurement, not a timing: how many rows of a plain dnnl_sgemm change their
//     bits when computed in a batch of M = 1 or 37 instead of 3960.
// (d) One benchmark per elementwise kernel at the workload's sizes; counters bytes_per_second, items_per_second.
#include <benchmark/benchmark.h>

#include <omp.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <hwy/highway.h>
#include <oneapi/dnnl/dnnl.h>

#include "jagged/nested_tensor.h"
#include "jagged/ops.h"
#include "jagged/sampling.h"
#include "kernels/linear.h"

namespace {
namespace hn = hwy::HWY_NAMESPACE;
using namespace jagged;

// The study's lengths; the file is the source of truth, this copy the fallback when ../shared is absent.
std::vector<int64_t> study_lengths() {
  std::ifstream file(std::string(JAGGED_SOURCE_DIR) + "/../shared/workloads/study-32.txt");
  std::vector<int64_t> lengths;
  for (int64_t length = 0; file >> length;) lengths.push_back(length);
  if (lengths.empty()) {
    std::fprintf(stderr, "ops_bench: ../shared/workloads/study-32.txt not found, using the built-in copy\n");
    lengths = {109, 63,  243, 13,  217, 16, 31,  187, 20, 28, 214, 230, 113, 58, 173, 174,
               198, 229, 48,  153, 189, 11, 185, 44,  79, 32, 127, 244, 250, 50, 71,  161};
  }
  return lengths;
}

struct StudyBatch {
  std::vector<int64_t> lengths = study_lengths();
  std::vector<int32_t> cu_seqlens = cu_seqlens_from_lengths(lengths);
  int64_t real_tokens = cu_seqlens.back();
  int64_t padded_tokens = 0;
  StudyBatch() {
    int64_t max_seqlen = 0;
    for (const int64_t length : lengths) max_seqlen = std::max(max_seqlen, length);
    padded_tokens = max_seqlen * static_cast<int64_t>(lengths.size());
  }
};

const StudyBatch& study() {
  static const StudyBatch batch;
  return batch;
}

Tensor random_tensor(const Shape& shape, uint64_t seed, float low = -1.0f, float high = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(low, high);
  Tensor tensor(shape);
  for (int64_t i = 0; i < tensor.numel(); ++i) tensor.data<float>()[i] = dist(rng);
  return tensor;
}

// ---------------------------------------------------------------------------------------------- (a) FMA peak

// kChains independent chains of vector FMAs, enough to cover the FMA latency (4 cycles) times the FMA ports
// (2) with margin; the compiler keeps them in registers (32 vector registers on AVX-512).
HWY_NOINLINE float fma_chains(int64_t steps, float seed) {
  constexpr size_t kChains = 16;
  const hn::ScalableTag<float> d;
  const auto mul = hn::Set(d, 0.999999f);
  const auto add = hn::Set(d, 1e-7f);
  decltype(hn::Zero(d)) chains[kChains];
  for (size_t c = 0; c < kChains; ++c) chains[c] = hn::Set(d, seed + static_cast<float>(c));
  for (int64_t step = 0; step < steps; ++step) {
    for (size_t c = 0; c < kChains; ++c) chains[c] = hn::MulAdd(chains[c], mul, add);
  }
  auto sum = chains[0];
  for (size_t c = 1; c < kChains; ++c) sum = hn::Add(sum, chains[c]);
  return hn::GetLane(sum);
}

constexpr int64_t kFmaSteps = 1 << 20;
double fma_flops_per_call() { return 2.0 * static_cast<double>(hn::Lanes(hn::ScalableTag<float>()) * 16) * kFmaSteps; }

// GFLOP/s of `threads` threads (0: all) running the chains at once.
double fma_gflops(int threads, int repeats) {
  const int team = threads > 0 ? threads : omp_get_max_threads();
  double best = 0.0;
  for (int repeat = 0; repeat < repeats; ++repeat) {
    float sink = 0.0f;
    const auto start = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(team) reduction(+ : sink)
    sink += fma_chains(kFmaSteps, static_cast<float>(omp_get_thread_num()));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    benchmark::DoNotOptimize(sink);
    best = std::max(best, fma_flops_per_call() * team / seconds * 1e-9);
  }
  return best;
}

// The all-threads peak, measured once, to express GEMM rates as a fraction of it.
double machine_peak_gflops() {
  static const double peak = fma_gflops(0, 20);
  return peak;
}

// Read bandwidth from memory: every thread sums its share of a buffer far larger than the caches. GB/s.
double read_gbytes_per_second(const std::vector<float>& buffer) {
  const hn::ScalableTag<float> d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  const int64_t count = static_cast<int64_t>(buffer.size()) / (4 * lanes) * (4 * lanes);
  const auto start = std::chrono::steady_clock::now();
  float total = 0.0f;
#pragma omp parallel for schedule(static) reduction(+ : total)
  for (int64_t i = 0; i < count; i += 4 * lanes) {
    const auto a = hn::Add(hn::LoadU(d, buffer.data() + i), hn::LoadU(d, buffer.data() + i + lanes));
    const auto b = hn::Add(hn::LoadU(d, buffer.data() + i + 2 * lanes), hn::LoadU(d, buffer.data() + i + 3 * lanes));
    total += hn::GetLane(hn::Add(a, b));
  }
  benchmark::DoNotOptimize(total);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return static_cast<double>(count) * sizeof(float) / seconds * 1e-9;
}

std::vector<float> bandwidth_buffer() {
  std::vector<float> buffer(size_t{1} << 28, 1.0f);  // 1 GiB, written (so mapped) before timing
  return buffer;
}

double machine_read_gbytes_per_second() {
  static const double bandwidth = [] {
    const std::vector<float> buffer = bandwidth_buffer();
    double best = 0.0;
    for (int run = 0; run < 5; ++run) best = std::max(best, read_gbytes_per_second(buffer));
    return best;
  }();
  return bandwidth;
}

void BM_MemoryBandwidth(benchmark::State& state) {
  const std::vector<float> buffer = bandwidth_buffer();
  double best = 0.0;
  for (auto _ : state) best = std::max(best, read_gbytes_per_second(buffer));
  state.counters["read_gbytes_per_second"] = best;
}

void BM_FmaPeak(benchmark::State& state) {
  const int team = state.range(0) > 0 ? static_cast<int>(state.range(0)) : omp_get_max_threads();
  double flops = 0.0;
  for (auto _ : state) {
    float sink = 0.0f;
#pragma omp parallel num_threads(team) reduction(+ : sink)
    sink += fma_chains(kFmaSteps, static_cast<float>(omp_get_thread_num()));
    benchmark::DoNotOptimize(sink);
    flops += fma_flops_per_call() * team;
  }
  state.counters["gflops"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsRate);
  state.counters["threads"] = team;
}

// ------------------------------------------------------------------------------------------- (b) GEMM peak

void BM_SgemmPeak(benchmark::State& state) {
  const int64_t n = state.range(0);
  const Tensor a = random_tensor({n, n}, 1);
  const Tensor b = random_tensor({n, n}, 2);
  Tensor c({n, n});
  for (auto _ : state) {
    dnnl_sgemm('N', 'T', n, n, n, 1.0f, a.data<float>(), n, b.data<float>(), n, 0.0f, c.data<float>(), n);
  }
  const double flops = 2.0 * n * n * n * static_cast<double>(state.iterations());
  state.counters["gflops"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsRate);
  state.counters["threads"] = omp_get_max_threads();
}

// ------------------------------------------------------------------------------------------------ (c) linear

struct LayerShape {
  const char* name;
  int64_t in_features;
  int64_t out_features;
};
constexpr LayerShape kLayerShapes[] = {
    {"smollm_qkvo_576x576", 576, 576},          {"smollm_gate_up_576x3072", 576, 3072},
    {"smollm_down_1536x576", 1536, 576},        {"llama_attn_2048x2048", 2048, 2048},
    {"llama_gate_or_up_2048x5632", 2048, 5632},
};

// Activations of one layer in both layouts; the padded rows beyond each sequence's length hold zeros.
struct LinearWorkload {
  Tensor weight, bias, nested_x, nested_out, padded_x, padded_out;
  ops::PackedWeight packed;
  explicit LinearWorkload(const LayerShape& shape) {
    weight = random_tensor({shape.out_features, shape.in_features}, 3, -0.05f, 0.05f);
    packed = ops::PackedWeight(weight);
    bias = random_tensor({shape.out_features}, 4);
    nested_x = random_tensor({study().real_tokens, shape.in_features}, 5);
    nested_out = Tensor({study().real_tokens, shape.out_features});
    const NestedTensor nested(nested_x.clone(), study().cu_seqlens);
    padded_x = nested.to_padded().values;
    padded_x.reshape({study().padded_tokens, shape.in_features});
    padded_out = Tensor({study().padded_tokens, shape.out_features});
  }
};

double linear_flops(int64_t rows, const LayerShape& shape) {
  return 2.0 * static_cast<double>(rows) * shape.in_features * shape.out_features;
}

void BM_LinearNestedVsPadded(benchmark::State& state) {
  const LayerShape& shape = kLayerShapes[state.range(0)];
  state.SetLabel(shape.name);
  LinearWorkload w(shape);
  using Clock = std::chrono::steady_clock;
  const auto seconds_since = [](Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
  };
  double nested_seconds = 0.0;
  double padded_seconds = 0.0;
  for (auto _ : state) {
    auto start = Clock::now();
    ops::linear(w.nested_x, w.packed, &w.bias, w.nested_out);
    nested_seconds += seconds_since(start);
    start = Clock::now();
    ops::linear(w.padded_x, w.packed, &w.bias, w.padded_out);
    padded_seconds += seconds_since(start);
  }
  const double iterations = static_cast<double>(state.iterations());
  const double nested_gflops = linear_flops(study().real_tokens, shape) * iterations / nested_seconds * 1e-9;
  const double padded_gflops = linear_flops(study().padded_tokens, shape) * iterations / padded_seconds * 1e-9;
  const double token_ratio = static_cast<double>(study().real_tokens) / static_cast<double>(study().padded_tokens);
  state.counters["nested_ms"] = nested_seconds / iterations * 1e3;
  state.counters["padded_ms"] = padded_seconds / iterations * 1e3;
  state.counters["nested_gflops"] = nested_gflops;
  state.counters["padded_gflops"] = padded_gflops;
  state.counters["fma_peak_gflops"] = machine_peak_gflops();
  state.counters["nested_fraction_of_fma_peak"] = nested_gflops / machine_peak_gflops();
  state.counters["padded_fraction_of_fma_peak"] = padded_gflops / machine_peak_gflops();
  state.counters["time_ratio"] = nested_seconds / padded_seconds;
  state.counters["token_ratio"] = token_ratio;
  state.counters["ratio_target"] = 1.1 * token_ratio;
}

// The nested batch through jagged's GEMM (plain = 0) or one plain dnnl_sgemm call over all rows on all threads
// (plain = 1, not batch-invariant), so the two can be compared.
void BM_LinearVsSgemm(benchmark::State& state) {
  const LayerShape& shape = kLayerShapes[state.range(0)];
  const bool plain = state.range(1) != 0;
  state.SetLabel(std::string(shape.name) + (plain ? " plain_sgemm" : " jagged"));
  LinearWorkload w(shape);
  const ConstMatrixView x = w.nested_x.matrix();
  const MatrixView out = w.nested_out.matrix();
  for (auto _ : state) {
    if (!plain) {
      ops::linear(x, w.packed, &w.bias, out);
    } else {
      dnnl_sgemm('N', 'T', x.rows, out.cols, x.cols, 1.0f, x.data, x.row_stride, w.weight.data<float>(), x.cols, 0.0f,
                 out.data, out.row_stride);
    }
  }
  const double gflops = linear_flops(study().real_tokens, shape) * static_cast<double>(state.iterations());
  state.counters["gflops"] = benchmark::Counter(gflops * 1e-9, benchmark::Counter::kIsRate);
  state.counters["fraction_of_fma_peak"] =
      benchmark::Counter(gflops * 1e-9 / machine_peak_gflops(), benchmark::Counter::kIsRate);
}

// Decode-sized batches: ops::linear on a packed weight (mode 0: f32, 2: bf16, 3: q8_0, 4: q4_0 (the 4-bit
// nibble path), 5: q5_0 (the int8 path of the 5/6-bit types)) against one plain sgemm call with the batch's own
// M (mode 1; oneDNN's gemv path for M = 1). Bytes: the weight as stored, read once per call.
void BM_LinearSmallBatch(benchmark::State& state) {
  const LayerShape& shape = kLayerShapes[state.range(0)];
  const int64_t rows = state.range(1);
  const bool plain = state.range(2) == 1;
  constexpr ops::WeightType kTypes[] = {ops::WeightType::f32,  ops::WeightType::f32,  ops::WeightType::bf16,
                                        ops::WeightType::q8_0, ops::WeightType::q4_0, ops::WeightType::q5_0};
  const ops::WeightType type = kTypes[state.range(2)];
  state.SetLabel(std::string(shape.name) + (plain ? " plain_sgemm" : " ops_linear " + ops::linear_path(type)));
  const Tensor weight = random_tensor({shape.out_features, shape.in_features}, 3);
  const ops::PackedWeight packed(weight, type);
  const Tensor x = random_tensor({rows, shape.in_features}, 5);
  Tensor out({rows, shape.out_features});
  for (auto _ : state) {
    if (plain) {
      dnnl_sgemm('N', 'T', rows, shape.out_features, shape.in_features, 1.0f, x.data<float>(), shape.in_features,
                 weight.data<float>(), shape.in_features, 0.0f, out.data<float>(), shape.out_features);
    } else {
      ops::linear(x, packed, nullptr, out);
    }
  }
  const double weight_bytes = plain ? static_cast<double>(weight.nbytes()) : static_cast<double>(packed.nbytes());
  state.counters["weight_gbytes_per_second"] =
      benchmark::Counter(weight_bytes * static_cast<double>(state.iterations()) * 1e-9, benchmark::Counter::kIsRate);
  state.counters["memory_gbytes_per_second"] = machine_read_gbytes_per_second();
}

constexpr int64_t kVocabSize = 49152;  // SmolLM-135M's

// Decode as a model runs it: the projections of all 30 layers of SmolLM-135M's shape, each its own weight, one
// after the other, so every weight comes from memory as in a decode step (BM_LinearSmallBatch reuses one weight,
// which stays in cache). MLP only: 576 -> 3072 gate/up and 1536 -> 576 down (318 MB in f32); the whole step: the
// QKV (576 -> 960) and output (576 -> 576) projections too and the tied 49152-token LM head (538 MB in f32), the
// GEMM part of a decode step alone, to set beside `jagged bench --decode`'s step probe.
class DecodeProjections {
 public:
  DecodeProjections(int64_t rows, ops::WeightType type, bool whole_step)
      : x576_(random_tensor({rows, 576}, 6)),
        x1536_(random_tensor({rows, 1536}, 5)),
        out576_({rows, 576}),
        out960_({rows, 960}),
        out3072_({rows, 3072}),
        logits_({rows, kVocabSize}) {
    constexpr int kLayers = 30;
    for (int layer = 0; layer < kLayers; ++layer) {
      if (whole_step) add(960, 576, x576_, out960_, 100 + layer, type);
      if (whole_step) add(576, 576, x576_, out576_, 200 + layer, type);
      add(3072, 576, x576_, out3072_, 10 + layer, type);
      add(576, 1536, x1536_, out576_, 50 + layer, type);
    }
    if (whole_step) add(kVocabSize, 576, x576_, logits_, 300, type);
  }
  void run() const {
    for (const Projection& p : projections_) ops::linear(*p.x, p.weight, nullptr, *p.out);
  }
  double weight_bytes() const { return weight_bytes_; }
  double flops() const { return flops_; }

 private:
  struct Projection {
    ops::PackedWeight weight;
    const Tensor* x;
    Tensor* out;
  };
  void add(int64_t out_features, int64_t in_features, const Tensor& x, Tensor& out, uint64_t seed,
           ops::WeightType type) {
    projections_.push_back(
        {ops::PackedWeight(random_tensor({out_features, in_features}, seed, -0.05f, 0.05f), type), &x, &out});
    weight_bytes_ += static_cast<double>(projections_.back().weight.nbytes());
    flops_ += 2.0 * static_cast<double>(x.dim(0) * in_features * out_features);
  }
  Tensor x576_, x1536_, out576_, out960_, out3072_, logits_;
  std::vector<Projection> projections_;
  double weight_bytes_ = 0.0;
  double flops_ = 0.0;
};

// Counters: the weights' read rate beside the machine's, and gflops beside the FMA peak.
void BM_LinearStreamed(benchmark::State& state) {
  const int64_t rows = state.range(0);
  const ops::WeightType type = state.range(1) == 0 ? ops::WeightType::f32 : ops::WeightType::bf16;
  const bool whole_step = state.range(2) == 1;
  const DecodeProjections projections(rows, type, whole_step);
  state.SetLabel(std::string(whole_step ? "smollm_step_projections" : "smollm_mlp_x30") + " " + ops::linear_path(type));
  for (auto _ : state) projections.run();
  const double iterations = static_cast<double>(state.iterations());
  state.counters["weight_gbytes_per_second"] =
      benchmark::Counter(projections.weight_bytes() * iterations * 1e-9, benchmark::Counter::kIsRate);
  state.counters["memory_gbytes_per_second"] = machine_read_gbytes_per_second();
  state.counters["gflops"] = benchmark::Counter(projections.flops() * iterations * 1e-9, benchmark::Counter::kIsRate);
  state.counters["fma_peak_gflops"] = machine_peak_gflops();
}

// The two orders in which the packed GEMMs can walk a decode batch's weights (kernels/linear.h: streamed, the
// default, and blocked, prefill's), alternated step by step in one process so that the VM's drift, which moves
// one benchmark against the next by 10-30% here, falls on both alike. A decode step's projections, f32, Q8_0,
// Q4_0 or bf16. Counters: each order's median step time and blocked / streamed.
void BM_LinearDecodeOrder(benchmark::State& state) {
  using kernels::cpu::LinearDecodeOrder;
  const int64_t rows = state.range(0);
  const ops::WeightType type = std::array{ops::WeightType::f32, ops::WeightType::q8_0, ops::WeightType::q4_0,
                                          ops::WeightType::bf16}[static_cast<size_t>(state.range(1))];
  const DecodeProjections projections(rows, type, /*whole_step=*/true);
  state.SetLabel(std::string(ops::weight_type_name(type)) + " " + ops::linear_path(type));
  std::vector<double> streamed, blocked;
  const auto timed = [&](LinearDecodeOrder order, std::vector<double>& seconds) {
    kernels::cpu::set_linear_decode_order(order);
    const auto start = std::chrono::steady_clock::now();
    projections.run();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  };
  for (auto _ : state) {
    timed(LinearDecodeOrder::blocked, blocked);
    timed(LinearDecodeOrder::streamed, streamed);
  }
  kernels::cpu::set_linear_decode_order(LinearDecodeOrder::streamed);
  const auto median = [](std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  state.counters["streamed_ms"] = median(streamed) * 1e3;
  state.counters["blocked_ms"] = median(blocked) * 1e3;
  state.counters["blocked_over_streamed"] = median(blocked) / median(streamed);
}

void BM_LinearBf16VsF32(benchmark::State& state) {
  const LayerShape& shape = kLayerShapes[state.range(0)];
  state.SetLabel(std::string(shape.name) + " " + ops::linear_path(ops::WeightType::bf16));
  LinearWorkload w(shape);
  const ops::PackedWeight bf16(w.weight, ops::WeightType::bf16);
  using Clock = std::chrono::steady_clock;
  double f32_seconds = 0.0;
  double bf16_seconds = 0.0;
  for (auto _ : state) {
    auto start = Clock::now();
    ops::linear(w.nested_x, w.packed, &w.bias, w.nested_out);
    f32_seconds += std::chrono::duration<double>(Clock::now() - start).count();
    start = Clock::now();
    ops::linear(w.nested_x, bf16, &w.bias, w.nested_out);
    bf16_seconds += std::chrono::duration<double>(Clock::now() - start).count();
  }
  const double flops = linear_flops(study().real_tokens, shape) * static_cast<double>(state.iterations());
  state.counters["f32_gflops"] = flops / f32_seconds * 1e-9;
  state.counters["bf16_gflops"] = flops / bf16_seconds * 1e-9;
  state.counters["bf16_speedup"] = f32_seconds / bf16_seconds;
}

// Q8_0 (or Q4_0) weights, the kernel's two paths alternately in the same iterations: f32 activations (weights
// dequantized in registers, FMA) and int8 activations (avx512-vnni: x rounded to Q8_0 blocks, vpdpbusd). Args:
// rows (3960: the study's prefill; 1-32: decode), in_features, out_features, q4_0 (1: Q4_0 weights).
// Counters: gflops of each, vnni_speedup.
void BM_LinearQ8VnniVsF32(benchmark::State& state) {
  const int64_t rows = state.range(0);
  const int64_t in = state.range(1);
  const int64_t out = state.range(2);
  const bool q4_0 = state.range(3) == 1;
  const kernels::cpu::LinearQ8Path best = kernels::cpu::best_linear_q8_0_path();
  state.SetLabel(std::string(q4_0 ? "q4_0 " : "q8_0 ") + std::to_string(in) + "x" + std::to_string(out) + " " +
                 kernels::cpu::linear_q8_0_path_name(best));
  const ops::PackedWeight packed(random_tensor({out, in}, 3, -0.05f, 0.05f),
                                 q4_0 ? ops::WeightType::q4_0 : ops::WeightType::q8_0);
  const auto* bytes = static_cast<const uint8_t*>(packed.data());
  const Tensor bias = random_tensor({out}, 4);
  const Tensor x = random_tensor({rows, in}, 5);
  Tensor result({rows, out});
  const auto run = [&](kernels::cpu::LinearQ8Path path) {
    if (q4_0) {
      kernels::cpu::linear_packed_blocks(QuantType::q4_0, x.matrix(), bytes, out, bias.data<float>(), result.matrix(),
                                         path);
    } else {
      kernels::cpu::linear_packed_q8_0(x.matrix(), bytes, out, bias.data<float>(), result.matrix(), path);
    }
  };
  using Clock = std::chrono::steady_clock;
  double f32_seconds = 0.0;
  double vnni_seconds = 0.0;
  for (auto _ : state) {
    auto start = Clock::now();
    run(kernels::cpu::LinearQ8Path::f32);
    f32_seconds += std::chrono::duration<double>(Clock::now() - start).count();
    start = Clock::now();
    run(best);
    vnni_seconds += std::chrono::duration<double>(Clock::now() - start).count();
  }
  const double flops = 2.0 * static_cast<double>(rows * in * out) * static_cast<double>(state.iterations());
  state.counters["f32_gflops"] = flops / f32_seconds * 1e-9;
  state.counters["vnni_gflops"] = flops / vnni_seconds * 1e-9;
  state.counters["vnni_speedup"] = f32_seconds / vnni_seconds;
}

// How many of the first M rows differ in bits between a plain sgemm call of M rows and one of all 3960.
void BM_SgemmBatchInvariance(benchmark::State& state) {
  const LayerShape& shape = kLayerShapes[state.range(0)];
  state.SetLabel(shape.name);
  const int64_t rows = study().real_tokens;
  const Tensor weight = random_tensor({shape.out_features, shape.in_features}, 3);
  const Tensor x = random_tensor({rows, shape.in_features}, 5);
  Tensor all({rows, shape.out_features});
  Tensor part({rows, shape.out_features});
  const auto plain = [&](int64_t m, Tensor& out) {
    dnnl_sgemm('N', 'T', m, shape.out_features, shape.in_features, 1.0f, x.data<float>(), shape.in_features,
               weight.data<float>(), shape.in_features, 0.0f, out.data<float>(), shape.out_features);
  };
  const ops::PackedWeight packed(weight);
  const auto ours = [&](int64_t m, Tensor& out) {
    ops::linear(x.matrix().row_range(0, m), packed, nullptr, out.matrix().row_range(0, m));
  };
  const auto differing_rows = [&](int64_t m) {
    int64_t count = 0;
    for (int64_t r = 0; r < m; ++r) {
      count += std::memcmp(part.data<float>() + r * shape.out_features, all.data<float>() + r * shape.out_features,
                           static_cast<size_t>(shape.out_features) * sizeof(float)) != 0;
    }
    return static_cast<double>(count);
  };
  for (auto _ : state) {
    plain(rows, all);
    for (const int64_t m : {1, 37}) {
      plain(m, part);
      state.counters["plain_rows_differing_m" + std::to_string(m)] = differing_rows(m);
    }
    ours(rows, all);
    for (const int64_t m : {1, 37}) {
      ours(m, part);
      state.counters["jagged_rows_differing_m" + std::to_string(m)] = differing_rows(m);
    }
  }
}

// ------------------------------------------------------------------------------------------ (d) elementwise

void set_rates(benchmark::State& state, int64_t bytes, int64_t items) {
  const auto iterations = static_cast<int64_t>(state.iterations());
  state.SetBytesProcessed(bytes * iterations);
  state.SetItemsProcessed(items * iterations);
}

constexpr int64_t kModelDim = 576;
constexpr int64_t kFfnDim = 1536;

void BM_Embedding(benchmark::State& state) {
  const int64_t tokens = study().real_tokens;
  const Tensor table = random_tensor({kVocabSize, kModelDim}, 1);
  std::vector<int32_t> ids(static_cast<size_t>(tokens));
  std::mt19937 rng(2);
  for (auto& id : ids) id = static_cast<int32_t>(rng() % kVocabSize);
  const Tensor token_ids = Tensor::from_ints(ids, {tokens});
  Tensor out({tokens, kModelDim});
  for (auto _ : state) ops::embedding(token_ids, table, out);
  set_rates(state, 2 * tokens * kModelDim * 4, tokens * kModelDim);
}

void BM_LayerNorm(benchmark::State& state) {
  const int64_t tokens = study().real_tokens;
  const Tensor x = random_tensor({tokens, kModelDim}, 1);
  const Tensor weight = random_tensor({kModelDim}, 2);
  const Tensor bias = random_tensor({kModelDim}, 3);
  Tensor out({tokens, kModelDim});
  for (auto _ : state) ops::layernorm(x, weight, bias, 1e-5f, out);
  set_rates(state, 2 * tokens * kModelDim * 4, tokens * kModelDim);
}

void BM_Silu(benchmark::State& state) {
  const Tensor input = random_tensor({study().real_tokens, kFfnDim}, 1, -8.0f, 8.0f);
  Tensor x = input.clone();
  for (auto _ : state) {
    state.PauseTiming();  // fresh inputs: silu applied repeatedly would drift into denormals
    std::memcpy(x.raw_data(), input.raw_data(), input.nbytes());
    state.ResumeTiming();
    ops::silu(x);
  }
  set_rates(state, 2 * x.numel() * 4, x.numel());
}

void BM_Gelu(benchmark::State& state) {
  const auto form = state.range(0) == 0 ? ops::GeluForm::erf : ops::GeluForm::tanh;
  state.SetLabel(form == ops::GeluForm::erf ? "erf" : "tanh");
  const Tensor input = random_tensor({study().real_tokens, kFfnDim}, 1, -8.0f, 8.0f);
  Tensor x = input.clone();
  for (auto _ : state) {
    state.PauseTiming();  // keep the inputs in range: gelu applied repeatedly would drift to 0
    std::memcpy(x.raw_data(), input.raw_data(), input.nbytes());
    state.ResumeTiming();
    ops::gelu(x, form);
  }
  set_rates(state, 2 * x.numel() * 4, x.numel());
}

void BM_SwiGlu(benchmark::State& state) {
  const Tensor gate_up = random_tensor({study().real_tokens, 2 * kFfnDim}, 1, -8.0f, 8.0f);
  Tensor out({study().real_tokens, kFfnDim});
  for (auto _ : state) ops::swiglu(gate_up, out);
  set_rates(state, (gate_up.numel() + out.numel()) * 4, out.numel());
}

void BM_Add(benchmark::State& state) {
  Tensor x = random_tensor({study().real_tokens, kModelDim}, 1);
  const Tensor y = random_tensor({study().real_tokens, kModelDim}, 2, -1e-3f, 1e-3f);
  for (auto _ : state) ops::add(x, y);
  set_rates(state, 3 * x.numel() * 4, x.numel());
}

// Softmax over vocabulary-sized rows (one per sequence: sampling the next token).
void BM_Softmax(benchmark::State& state) {
  const int64_t rows = static_cast<int64_t>(study().lengths.size());
  const Tensor logits = random_tensor({rows, kVocabSize}, 1, -10.0f, 10.0f);
  Tensor x = logits.clone();
  for (auto _ : state) {
    state.PauseTiming();
    std::memcpy(x.raw_data(), logits.raw_data(), logits.nbytes());
    state.ResumeTiming();
    ops::softmax(x);
  }
  set_rates(state, 2 * x.numel() * 4, x.numel());
}

void BM_Argmax(benchmark::State& state) {
  const int64_t rows = static_cast<int64_t>(study().lengths.size());
  const Tensor logits = random_tensor({rows, kVocabSize}, 1, -10.0f, 10.0f);
  for (auto _ : state) benchmark::DoNotOptimize(ops::argmax(logits));
  set_rates(state, logits.numel() * 4, logits.numel());
}

// One sampled token per row of a decode step's logits (32 rows of SmolLM's vocabulary), as the engine samples
// them: temperature 0.8 alone (the OpenAI-style default path, no sort), with top-p 0.95, with top-k 40; greedy.
void BM_Sample(benchmark::State& state) {
  constexpr int64_t kRows = 32;
  SamplingParams params;
  params.temperature = state.range(0) == 3 ? 0.0f : 0.8f;
  if (state.range(0) == 1) params.top_p = 0.95f;
  if (state.range(0) == 2) params.top_k = 40;
  constexpr const char* kLabels[] = {"temperature", "top_p", "top_k", "greedy"};
  state.SetLabel(kLabels[state.range(0)]);
  const Tensor logits = random_tensor({kRows, kVocabSize}, 1, -10.0f, 10.0f);
  Sampler sampler(params);
  for (auto _ : state) {
    for (int64_t row = 0; row < kRows; ++row) {
      benchmark::DoNotOptimize(sampler.sample(std::span<const float>(logits.data<float>() + row * kVocabSize,
                                                                     static_cast<size_t>(kVocabSize))));
    }
  }
  set_rates(state, logits.numel() * 4, logits.numel());
}

// RoPE on the Q band (9 heads of 64) of a fused QKV projection of SmolLM-135M.
void BM_Rope(benchmark::State& state) {
  const auto pairs = state.range(0) == 0 ? ops::RopePairs::adjacent : ops::RopePairs::halves;
  state.SetLabel(pairs == ops::RopePairs::adjacent ? "adjacent" : "halves");
  constexpr int kHeads = 9;
  constexpr int kKvHeads = 3;
  constexpr int kHeadDim = 64;
  const int64_t tokens = study().real_tokens;
  Tensor qkv = random_tensor({tokens, int64_t{kHeads + 2 * kKvHeads} * kHeadDim}, 1);
  const Tensor positions = ops::token_positions(study().cu_seqlens);
  const std::vector<float> inv_freq = ops::rope_inv_freq(kHeadDim, 10000.0f);
  const MatrixView q = qkv.matrix().columns(0, int64_t{kHeads} * kHeadDim);
  for (auto _ : state) ops::rope(q, kHeads, kHeadDim, positions, inv_freq, pairs);
  set_rates(state, 2 * tokens * kHeads * kHeadDim * 4, tokens * kHeads * kHeadDim);
}

BENCHMARK(BM_FmaPeak)->ArgName("threads")->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SgemmPeak)->ArgName("n")->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_LinearNestedVsPadded)->ArgName("shape")->DenseRange(0, 4)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_LinearVsSgemm)
    ->ArgNames({"shape", "plain"})
    ->ArgsProduct({{0, 1, 2, 3, 4}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_LinearBf16VsF32)->ArgName("shape")->DenseRange(0, 4)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_LinearQ8VnniVsF32)
    ->ArgNames({"rows", "in", "out", "q4_0"})
    ->Args({3960, 576, 1536, 0})
    ->Args({3960, 1536, 576, 0})
    ->Args({3960, 576, 576, 0})
    ->Args({1, 576, 1536, 0})
    ->Args({8, 576, 1536, 0})
    ->Args({32, 576, 1536, 0})
    ->Args({3960, 576, 1536, 1})
    ->Args({32, 576, 1536, 1})
    ->Args({1, 576, 1536, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_MemoryBandwidth)->Iterations(5)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_LinearSmallBatch)
    ->ArgNames({"shape", "rows", "mode"})
    ->ArgsProduct({{0, 3}, {1, 8, 32, 64}, {0, 1, 2, 3, 4, 5}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_LinearStreamed)
    ->ArgNames({"rows", "bf16", "step"})
    ->ArgsProduct({{1, 8, 32}, {0, 1}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_LinearDecodeOrder)
    ->ArgNames({"rows", "type"})
    ->ArgsProduct({{1, 8, 32}, {0, 1, 2, 3}})
    ->MinTime(2.0)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_SgemmBatchInvariance)->ArgName("shape")->Arg(0)->Arg(3)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Embedding)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_LayerNorm)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Silu)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Gelu)->ArgName("tanh")->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_SwiGlu)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Add)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Softmax)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Argmax)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Sample)->ArgName("filter")->Arg(0)->Arg(1)->Arg(2)->Arg(3)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Rope)->ArgName("halves")->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
