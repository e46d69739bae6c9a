// Ops on nested batches. Models see activations as [num_tokens, features] matrices (tokens of all sequences
// packed); only RoPE (positions) and attention (sequence boundaries) read the batch layout. Every op checks
// shapes here, at the API boundary, and throws InvalidArgument naming the argument; kernels then run unchecked.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "jagged/nested_tensor.h"
#include "jagged/paged_kv.h"
#include "jagged/tensor.h"

namespace jagged::ops {

// out[t] = table[token_ids[t]]. token_ids [num_tokens] i32; table [vocab_size, dim] f32; out [num_tokens, dim].
// Throws on an id outside [0, vocab_size).
void embedding(const Tensor& token_ids, const Tensor& table, Tensor& out);
class PackedWeight;
// The same lookup from a packed weight [vocab_size, dim] (a table kept quantized, or shared with a tied LM
// head): each row unpacked exactly, as PackedWeight::unpack_row.
void embedding(const Tensor& token_ids, const PackedWeight& table, Tensor& out);

// How a linear layer's weight is stored in memory (and so which kernel multiplies by it). Activations stay f32
// between ops whatever the type.
enum class WeightType : uint8_t {
  f32,
  bf16,  // rounded to nearest even at packing; the kernel rounds x to bf16 too (see kernels/linear.h)
  q8_0,  // llama.cpp's Q8_0 blocks (32 int8 + an f16 scale), quantized at packing as llama.cpp does
  // The other GGUF block types (src/core/quant_blocks.h), kept as the file has them. q4_0 .. q5_1 can also be
  // quantized from f32 at packing (llama.cpp's reference quantizers); the K types come only from files.
  q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k,
};
std::string_view weight_type_name(WeightType type);
// The weight type of a block dtype (DType::q4_k -> WeightType::q4_k); InvalidArgument for another dtype.
WeightType weight_type_of_blocks(DType dtype);
// "f32", "bf16", "q8_0", "q4_0"...; InvalidArgument naming the choices otherwise.
WeightType parse_weight_type(std::string_view name);
// The kernel path ops::linear takes for a weight type on this CPU, e.g. "avx512-bf16" (chosen at run time).
// q8_0, q4_0, q4_1, q4_k and q5_0: "avx512-vnni" (activations rounded to Q8_0 blocks, int8 dot products, as
// llama.cpp) where cpuid has AVX512-VNNI, unless the environment says JAGGED_Q8_ACTIVATIONS=f32 (activations stay
// f32, weights dequantized in registers: bit-equal to the f32 kernel on the dequantized weight); read at each call.
std::string linear_path(WeightType type);
// The types of a model's projections as they run, each once in first-seen order with its count and kernel path:
// "q8_0 x16 (avx512-vnni), f32 x5 (f32-fma (own GEMM))". What a report shows, since a file's types can differ
// from the --dtype asked (a GGUF file's quantized tensors keep their type).
std::string describe_weight_types(std::span<const WeightType> types);
// The relative error with which that path rounds activations before its products: 0 (kept f32), 2^-9 (bf16),
// 1/254 (int8 blocks: half a step of max|x| / 127).
double linear_activation_rounding(WeightType type);

// A linear layer's weight [out_features, in_features], converted to its storage type and rearranged once into
// the GEMM kernel's panel layout so that no forward pass repacks it (models pack at load). Owns its copy: the
// source may be released.
class PackedWeight {
 public:
  PackedWeight() = default;
  // weight: [out_features, in_features] f32, f16 or bf16 (widened exactly), converted to `type`; or of a block
  // dtype (a GGUF file's Q4_K...), kept in its own type whatever `type` says (never widened).
  explicit PackedWeight(const Tensor& weight, WeightType type = WeightType::f32);
  // The parts' rows one after the other, each part kept in its own type (a fused QKV projection whose parts a
  // GGUF file stores in different block types). Parts: defined, same in_features, none itself stacked.
  static PackedWeight stack(std::vector<PackedWeight> parts);
  bool defined() const { return packed_.defined() || !parts_.empty(); }
  WeightType type() const { return type_; }  // of a stack: its first part's
  const std::vector<PackedWeight>& parts() const { return parts_; }  // empty unless stacked
  int64_t out_features() const { return out_features_; }
  int64_t in_features() const { return in_features_; }
  int64_t numel() const { return out_features_ * in_features_; }  // of the weight, without the panels' padding
  size_t nbytes() const;  // in memory, with the panels' padding
  const void* data() const { return packed_.raw_data(); }
  // The weight back in its plain layout [out_features, in_features] f32 (for export; bf16 and the block types
  // widen exactly).
  Tensor unpack() const;
  // Row `row` of it (values [in_features] f32), the same values: the embedding lookup of a tied table.
  void unpack_row(int64_t row, float* values) const;

 private:
  void pack_blocks(const Tensor& weight);  // a block dtype's weight, in its own type

  Tensor packed_;  // [packed bytes] u8, see kernels/linear.h
  std::vector<PackedWeight> parts_;
  WeightType type_ = WeightType::f32;
  int64_t out_features_ = 0;
  int64_t in_features_ = 0;
};

// out = x * weight^T + bias, one GEMM over all rows. x [rows, in]; weight [out, in]; bias [out] or nullptr;
// out [rows, out]. A row's result does not depend on the other rows (bit for bit). The Tensor forms pack the
// weight on every call.
void linear(ConstMatrixView x, const PackedWeight& weight, const Tensor* bias, MatrixView out);
void linear(const Tensor& x, const PackedWeight& weight, const Tensor* bias, Tensor& out);
void linear(ConstMatrixView x, const Tensor& weight, const Tensor* bias, MatrixView out);
void linear(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out);

// out = x / rms(x) * weight, per row. x, out [rows, dim]; weight [dim]. out may alias x.
void rmsnorm(const Tensor& x, const Tensor& weight, float eps, Tensor& out);
// out = (x - mean) / sqrt(var + eps) * weight + bias, per row. out may alias x.
void layernorm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps, Tensor& out);

enum class GeluForm { erf, tanh };
void silu(Tensor& x);                   // in place, any shape
void gelu(Tensor& x, GeluForm form);    // in place, any shape
// out = silu(gate) * up where gate_up [rows, 2 * ffn_dim] holds gate in its first half, up in its second;
// out [rows, ffn_dim].
void swiglu(const Tensor& gate_up, Tensor& out);

// x += y (same shape).
void add(Tensor& x, const Tensor& y);
// Softmax of each row, in place. x [rows, cols].
void softmax(Tensor& x);
// Index of the largest value of each row (first on ties). x [rows, cols] -> [rows].
std::vector<int32_t> argmax(const Tensor& x);
// The same for one row (not empty).
int32_t argmax(std::span<const float> row);
// A sampler's unnormalised probabilities, in place: scores[i] = exp((scores[i] - max) / temperature), double, max
// the largest score (so the most likely token has 1), temperature > 0, scores finite and not empty. Returns the
// sums of the weights that are >= floor (0: all) over consecutive blocks of sampling_weight_block() scores, in a
// fixed order: a draw finds its block from these, then walks only that block.
std::vector<double> sampling_weights(std::span<double> scores, double temperature, double floor);
int64_t sampling_weight_block();

// Which elements RoPE rotates together: (x0, x1), (x2, x3)... (llama2.c, GGUF) or (x_i, x_{i+d/2}) (Hugging Face).
enum class RopePairs { adjacent, halves };

// Inverse frequencies [head_dim / 2]: theta^(-2i/head_dim), with Llama 3's scaling when factor > 0.
struct RopeScaling {
  float factor = 0.0f;  // 0: none
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int64_t original_context = 8192;
};
std::vector<float> rope_inv_freq(int head_dim, float theta, const RopeScaling& scaling = {});

// Position of every token: restarts at 0 for each sequence, plus start_positions[seq] when given
// (tokens already in a KV cache). -> [num_tokens] i32.
Tensor token_positions(std::span<const int32_t> cu_seqlens, std::span<const int32_t> start_positions = {});

// Rotates each head of x in place by its token's position. x [num_tokens, num_heads * head_dim] (a strided
// view: the Q or K band of a fused QKV projection); positions [num_tokens] i32; inv_freq [head_dim / 2].
void rope(MatrixView x, int num_heads, int head_dim, const Tensor& positions, std::span<const float> inv_freq,
          RopePairs pairs);
// The same in two parts, so that a forward computes its tokens' rotations once for all its layers (and for Q and
// K): rotations [>= num_tokens, 2 * head_dim] f32, the first num_tokens rows written from positions [num_tokens]
// i32; then each head of x rotated by its row's rotation (the same values, so the same result bit for bit).
void rope_rotations(const Tensor& positions, std::span<const float> inv_freq, int head_dim, RopePairs pairs,
                    Tensor& rotations);
void rope_apply(MatrixView x, int num_heads, int head_dim, const Tensor& rotations, RopePairs pairs);

struct AttentionConfig {
  int num_heads = 0;
  int num_kv_heads = 0;  // divides num_heads: MHA (equal), GQA, MQA (1)
  int head_dim = 0;      // a multiple of 8
  float scale = 0.0f;    // 0: 1 / sqrt(head_dim)
  bool causal = true;
};

// Fused ragged attention (online softmax, no score matrix): every sequence attends only to itself.
// q, out [num_tokens, num_heads * head_dim]; k, v [num_tokens, num_kv_heads * head_dim]; strided views.
void attention(ConstMatrixView q, ConstMatrixView k, ConstMatrixView v, MatrixView out,
               std::span<const int32_t> cu_seqlens, const AttentionConfig& config);

// The padded formulation frameworks use: rows are [batch, max_seqlen] positions; all batch x max_seqlen^2
// scores are computed, then masked (key padding, and causal when set), softmaxed and applied.
// key_padding_mask [batch, max_seqlen] u8 (1 = real). Padded query rows get well-defined (finite) values.
void attention_padded(ConstMatrixView q, ConstMatrixView k, ConstMatrixView v, MatrixView out, int64_t batch,
                      int64_t max_seqlen, const Tensor& key_padding_mask, const AttentionConfig& config);

// Paged KV cache (paged_kv.h): tokens per block and floats per cached V row on this CPU.
int64_t kv_block_tokens();
int64_t kv_value_stride(int64_t head_dim);
// Writes this call's keys (after RoPE) and values, k, v [num_tokens, num_kv_heads * head_dim], into their slots:
// row i of sequence s is key context_lengths[s] + i. The blocks must be in the sequences' tables.
void paged_kv_write(ConstMatrixView k, ConstMatrixView v, const PagedKvBatch& batch, const PagedKvLayer& layer,
                    const AttentionConfig& config);
// Attention of this call's queries q, out [num_tokens, num_heads * head_dim] to all keys of their sequences in
// the cache (written first by paged_kv_write), causal within the new tokens. A row's result is bit-identical to
// ops::attention over the whole sequence at once, whatever else shares the call and however the sequence was
// split into calls. workspace: paged_attention_workspace_bytes(config, threads) bytes, 64-byte aligned, for the
// number of threads that will run (omp_get_max_threads()).
void paged_attention(ConstMatrixView q, MatrixView out, const PagedKvBatch& batch, const PagedKvLayer& layer,
                     const AttentionConfig& config, std::span<std::byte> workspace);
int64_t paged_attention_workspace_bytes(const AttentionConfig& config, int threads);

}  // namespace jagged::ops
