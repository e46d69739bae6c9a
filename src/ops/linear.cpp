#include "kernels/linear.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "core/huge_pages.h"
#include "jagged/ops.h"

namespace jagged::ops {

namespace {

// A packed weight's storage. f32 and bf16 weights go on huge pages (core/huge_pages.h): a decode step streams
// them once, at a rate the TLB limits (measured 4-15% faster at 1 and 32 rows, bench/ops_bench
// BM_LinearStreamed). Quantized weights gained nothing measurable (one-request decode, Q8_0 and Q4_K_M) and stay
// on ordinary pages, which spare a huge page's rounding in peak RSS (their files are small).
Tensor packed_bytes(int64_t bytes, WeightType type) {
  if (type == WeightType::f32 || type == WeightType::bf16) return core::huge_page_tensor({bytes}, DType::u8);
  return Tensor({bytes}, DType::u8);
}

void check_view(ConstMatrixView view, const char* what) {
  if (view.rows < 0 || view.cols < 0) {
    throw InvalidArgument(concat("linear: ", what, " has negative extents [", view.rows, ", ", view.cols, "]"));
  }
  if (view.rows > 1 && view.row_stride < view.cols) {
    throw InvalidArgument(concat("linear: ", what, " row_stride ", view.row_stride, " < cols ", view.cols));
  }
  if (view.rows > 0 && view.cols > 0 && view.data == nullptr) {
    throw InvalidArgument(concat("linear: ", what, " [", view.rows, ", ", view.cols, "] has no data"));
  }
}

// Whether two strided views share an element. Exact for views with the same row stride (bands of one buffer,
// like x and the Q band of a fused QKV projection); conservative (address ranges) otherwise.
bool overlap(ConstMatrixView a, ConstMatrixView b) {
  if (a.rows == 0 || a.cols == 0 || b.rows == 0 || b.cols == 0) return false;
  const auto address = [](const float* pointer) { return static_cast<int64_t>(reinterpret_cast<uintptr_t>(pointer)); };
  const int64_t element = sizeof(float);
  const int64_t a_begin = address(a.data);
  const int64_t b_begin = address(b.data);
  const int64_t a_end = a_begin + ((a.rows - 1) * a.row_stride + a.cols) * element;
  const int64_t b_end = b_begin + ((b.rows - 1) * b.row_stride + b.cols) * element;
  if (a_end <= b_begin || b_end <= a_begin) return false;
  if (a.row_stride != b.row_stride || a.rows == 1 || b.rows == 1) return true;
  // Same stride: within one period of stride bytes, a covers [0, a.cols) and b [offset, offset + b.cols).
  const int64_t period = a.row_stride * element;
  const int64_t offset = (((b_begin - a_begin) % period) + period) % period;
  return offset < a.cols * element || offset + b.cols * element > period;
}

// The Q8_0 kernel path: the CPU's best unless JAGGED_Q8_ACTIVATIONS=f32 (int8, the default, or f32).
kernels::cpu::LinearQ8Path q8_0_path() {
  const char* activations = std::getenv("JAGGED_Q8_ACTIVATIONS");
  if (activations == nullptr || *activations == '\0' || std::string_view(activations) == "int8") {
    return kernels::cpu::best_linear_q8_0_path();
  }
  if (std::string_view(activations) == "f32") return kernels::cpu::LinearQ8Path::f32;
  throw InvalidArgument(concat("JAGGED_Q8_ACTIVATIONS='", activations, "': use int8 (activations rounded to Q8_0 ",
                               "blocks where the CPU has AVX512-VNNI, the default) or f32"));
}

constexpr WeightType kWeightTypes[] = {WeightType::f32,  WeightType::bf16, WeightType::q8_0, WeightType::q4_0,
                                       WeightType::q4_1, WeightType::q5_0, WeightType::q5_1, WeightType::q4_k,
                                       WeightType::q5_k, WeightType::q6_k};

// The block type of a weight type, or nullopt (f32, bf16).
std::optional<QuantType> block_type(WeightType type) {
  switch (type) {
    case WeightType::f32:
    case WeightType::bf16: return std::nullopt;
    case WeightType::q8_0: return QuantType::q8_0;
    case WeightType::q4_0: return QuantType::q4_0;
    case WeightType::q4_1: return QuantType::q4_1;
    case WeightType::q5_0: return QuantType::q5_0;
    case WeightType::q5_1: return QuantType::q5_1;
    case WeightType::q4_k: return QuantType::q4_k;
    case WeightType::q5_k: return QuantType::q5_k;
    case WeightType::q6_k: return QuantType::q6_k;
  }
  return std::nullopt;
}

// Whether ops::linear rounds the activations of this type's products to Q8_0 blocks (the int8 path).
bool takes_int8_activations(WeightType type) {
  const std::optional<QuantType> quant = block_type(type);
  return quant && q8_0_path() == kernels::cpu::LinearQ8Path::avx512_vnni;  // every block type has the int8 path
}

void check_weight(const Tensor& weight) {
  if (!weight.defined() || weight.rank() != 2 || weight.dtype() != DType::f32) {
    throw InvalidArgument(concat("linear: weight must be [out_features, in_features] f32, got ",
                                 shape_string(weight.shape()), " ", dtype_name(weight.dtype())));
  }
}

void check_arguments(ConstMatrixView x, int64_t out_features, int64_t in_features, const Tensor* bias,
                     ConstMatrixView out) {
  check_view(x, "x");
  check_view(out, "out");
  if (x.cols != in_features) {
    throw InvalidArgument(concat("linear: x has ", x.cols, " columns but the weight [", out_features, ", ",
                                 in_features, "] expects in_features = ", in_features));
  }
  if (out.rows != x.rows || out.cols != out_features) {
    throw InvalidArgument(
        concat("linear: out is [", out.rows, ", ", out.cols, "], expected [", x.rows, ", ", out_features, "]"));
  }
  if (bias != nullptr) check_shape(*bias, {out_features}, "linear bias");
  if (overlap(x, out)) throw InvalidArgument("linear: out overlaps x; the product cannot be computed in place");
}

const float* bias_data(const Tensor* bias) { return bias != nullptr ? bias->data<float>() : nullptr; }

// Views from the shapes (Tensor::matrix() cannot tell the columns of a tensor with no rows).
std::pair<ConstMatrixView, MatrixView> matrix_views(const Tensor& x, Tensor& out) {
  if (!x.defined() || x.rank() != 2) {
    throw InvalidArgument(concat("linear: x must be [rows, in_features], got ", shape_string(x.shape())));
  }
  if (!out.defined() || out.rank() != 2) {
    throw InvalidArgument(concat("linear: out must be [rows, out_features], got ", shape_string(out.shape())));
  }
  if (x.dtype() != DType::f32 || out.dtype() != DType::f32) {
    throw InvalidArgument(
        concat("linear: x and out must be f32, got ", dtype_name(x.dtype()), " and ", dtype_name(out.dtype())));
  }
  return {ConstMatrixView{x.data<float>(), x.dim(0), x.dim(1), x.dim(1)},
          MatrixView{out.data<float>(), out.dim(0), out.dim(1), out.dim(1)}};
}

}  // namespace

std::string_view weight_type_name(WeightType type) {
  switch (type) {
    case WeightType::f32: return "f32";
    case WeightType::bf16: return "bf16";
    case WeightType::q8_0: return "q8_0";
    case WeightType::q4_0: return "q4_0";
    case WeightType::q4_1: return "q4_1";
    case WeightType::q5_0: return "q5_0";
    case WeightType::q5_1: return "q5_1";
    case WeightType::q4_k: return "q4_k";
    case WeightType::q5_k: return "q5_k";
    case WeightType::q6_k: return "q6_k";
  }
  return "unknown";
}

WeightType weight_type_of_blocks(DType dtype) {
  const std::optional<QuantType> quant = quant_type_of(dtype);
  for (const WeightType type : kWeightTypes) {
    if (quant && block_type(type) == quant) return type;
  }
  throw InvalidArgument(concat("dtype ", dtype_name(dtype), " is not a block type"));
}

WeightType parse_weight_type(std::string_view name) {
  for (const WeightType type : kWeightTypes) {
    if (name == weight_type_name(type)) return type;
  }
  throw InvalidArgument(
      concat("unknown weight dtype '", name, "'; choose f32, bf16, q8_0, q4_0, q4_1, q5_0, q5_1 (q4_k, q5_k and q6_k ",
             "weights come from GGUF files)"));
}

std::string linear_path(WeightType type) {
  if (takes_int8_activations(type)) {
    return kernels::cpu::linear_q8_0_path_name(kernels::cpu::LinearQ8Path::avx512_vnni);
  }
  switch (type) {
    case WeightType::f32: return "f32-fma (own GEMM)";
    case WeightType::bf16: return kernels::cpu::linear_bf16_path_name(kernels::cpu::best_linear_bf16_path());
    case WeightType::q8_0: return kernels::cpu::linear_q8_0_path_name(q8_0_path());
    case WeightType::q4_0:
    case WeightType::q4_1:
    case WeightType::q5_0:
    case WeightType::q5_1:
    case WeightType::q4_k:
    case WeightType::q5_k:
    case WeightType::q6_k:
      return concat(weight_type_name(type), " (blocks dequantized to f32 registers, FMA)");
  }
  return "unknown";
}

std::string describe_weight_types(std::span<const WeightType> types) {
  std::vector<WeightType> order;
  for (const WeightType type : types) {
    if (std::find(order.begin(), order.end(), type) == order.end()) order.push_back(type);
  }
  std::string description;
  for (const WeightType type : order) {
    description += concat(description.empty() ? "" : ", ", weight_type_name(type), " x",
                          std::count(types.begin(), types.end(), type), " (", linear_path(type), ")");
  }
  return description;
}

double linear_activation_rounding(WeightType type) {
  if (type == WeightType::bf16) return std::ldexp(1.0, -9);
  return takes_int8_activations(type) ? 1.0 / 254.0 : 0.0;
}

PackedWeight::PackedWeight(const Tensor& weight, WeightType type) : type_(type) {
  if (weight.defined() && is_block_dtype(weight.dtype())) {
    pack_blocks(weight);
    return;
  }
  if (weight.defined() && is_half_dtype(weight.dtype())) {
    // A file's half weight: widened one matrix at a time (exact), then packed as asked, so a load never holds
    // the whole model in f32.
    const Tensor widened = weight.to_f32();
    weight.release_file_pages();
    *this = PackedWeight(widened, type);
    return;
  }
  check_weight(weight);
  out_features_ = weight.dim(0);
  in_features_ = weight.dim(1);
  if (const std::optional<QuantType> quant = block_type(type); quant && type != WeightType::q8_0) {
    if (!can_quantize(*quant)) {
      throw InvalidArgument(concat(weight_type_name(type), " weights come only from GGUF files (llama.cpp's ",
                                   "llama-quantize); an f32 weight can be packed as f32, bf16, q8_0, q4_0, q4_1, ",
                                   "q5_0 or q5_1"));
    }
    // Quantized row by row as llama.cpp's reference quantizer, then packed as a file's blocks would be.
    const QuantLayout& layout = quant_layout(*quant);
    const int64_t row_bytes = quant_row_bytes(*quant, in_features_);
    std::vector<uint8_t> rows(static_cast<size_t>(out_features_ * row_bytes));
    const float* values = weight.data<float>();
    for (int64_t o = 0; o < out_features_; ++o) {
      for (int64_t b = 0; b * layout.values < in_features_; ++b) {
        quantize_block(*quant, values + o * in_features_ + b * layout.values,
                       std::min(layout.values, in_features_ - b * layout.values),
                       rows.data() + o * row_bytes + b * layout.bytes);
      }
    }
    packed_ = packed_bytes(kernels::cpu::packed_linear_blocks_bytes(*quant, out_features_, in_features_), type_);
    kernels::cpu::pack_linear_weight_blocks(*quant, rows.data(), out_features_, in_features_,
                                            static_cast<uint8_t*>(packed_.raw_data()));
    weight.release_file_pages();
    return;
  }
  switch (type) {
    case WeightType::f32: {
      const int64_t floats = kernels::cpu::packed_linear_floats(out_features_, in_features_);
      packed_ = packed_bytes(floats * static_cast<int64_t>(sizeof(float)), WeightType::f32);
      kernels::cpu::pack_linear_weight(weight.data<float>(), out_features_, in_features_,
                                       static_cast<float*>(packed_.raw_data()));
      weight.release_file_pages();  // the packed copy is the one that stays resident
      return;
    }
    case WeightType::bf16: {
      const int64_t pairs = kernels::cpu::packed_linear_bf16_pairs(out_features_, in_features_);
      packed_ = packed_bytes(pairs * static_cast<int64_t>(sizeof(uint32_t)), WeightType::bf16);
      kernels::cpu::pack_linear_weight_bf16(weight.data<float>(), out_features_, in_features_,
                                            static_cast<uint32_t*>(packed_.raw_data()));
      weight.release_file_pages();
      return;
    }
    case WeightType::q8_0: {
      packed_ = packed_bytes(kernels::cpu::packed_linear_q8_0_bytes(out_features_, in_features_), type_);
      kernels::cpu::pack_linear_weight_q8_0(weight.data<float>(), out_features_, in_features_,
                                            static_cast<uint8_t*>(packed_.raw_data()));
      weight.release_file_pages();
      return;
    }
    default: break;  // the other block types: above
  }
  throw InvalidArgument("PackedWeight: unknown weight type");
}

PackedWeight PackedWeight::stack(std::vector<PackedWeight> parts) {
  if (parts.empty()) throw InvalidArgument("PackedWeight::stack: no parts");
  PackedWeight stacked;
  stacked.type_ = parts.front().type();
  stacked.in_features_ = parts.front().in_features();
  for (const PackedWeight& part : parts) {
    if (!part.defined() || !part.parts().empty() || part.in_features() != stacked.in_features_) {
      throw InvalidArgument(concat("PackedWeight::stack: every part must be a defined, unstacked weight of ",
                                   stacked.in_features_, " in_features"));
    }
    stacked.out_features_ += part.out_features();
  }
  stacked.parts_ = std::move(parts);
  return stacked;
}

size_t PackedWeight::nbytes() const {
  size_t bytes = packed_.nbytes();
  for (const PackedWeight& part : parts_) bytes += part.nbytes();
  return bytes;
}

void PackedWeight::pack_blocks(const Tensor& weight) {
  if (weight.rank() != 2) {
    throw InvalidArgument(concat("linear: weight must be [out_features, in_features], got ",
                                 shape_string(weight.shape()), " ", dtype_name(weight.dtype())));
  }
  const QuantType quant = *quant_type_of(weight.dtype());
  type_ = weight_type_of_blocks(weight.dtype());
  out_features_ = weight.dim(0);
  in_features_ = weight.dim(1);
  if (in_features_ % quant_layout(quant).values != 0) {
    throw InvalidArgument(concat("linear: a ", dtype_name(weight.dtype()), " weight's rows must be a multiple of ",
                                 quant_layout(quant).values, " values, got ", shape_string(weight.shape())));
  }
  const auto* rows = static_cast<const uint8_t*>(weight.raw_data());
  if (quant == QuantType::q8_0) {
    packed_ = packed_bytes(kernels::cpu::packed_linear_q8_0_bytes(out_features_, in_features_), type_);
    kernels::cpu::pack_linear_weight_q8_0_blocks(rows, out_features_, in_features_,
                                                 static_cast<uint8_t*>(packed_.raw_data()));
  } else {
    packed_ = packed_bytes(kernels::cpu::packed_linear_blocks_bytes(quant, out_features_, in_features_), type_);
    kernels::cpu::pack_linear_weight_blocks(quant, rows, out_features_, in_features_,
                                            static_cast<uint8_t*>(packed_.raw_data()));
  }
  weight.release_file_pages();
}

Tensor PackedWeight::unpack() const {
  Tensor weight({out_features_, in_features_});
  if (!defined()) return weight;
  for (int64_t row = 0; row < out_features_; ++row) unpack_row(row, weight.data<float>() + row * in_features_);
  return weight;
}

void PackedWeight::unpack_row(int64_t row, float* values) const {
  if (row < 0 || row >= out_features_) {
    throw InvalidArgument(concat("PackedWeight::unpack_row: row ", row, " is outside [0, ", out_features_, ")"));
  }
  for (const PackedWeight& part : parts_) {
    if (row < part.out_features()) return part.unpack_row(row, values);
    row -= part.out_features();
  }
  switch (type_) {
    case WeightType::f32:
      return kernels::cpu::unpack_linear_row(static_cast<const float*>(data()), in_features_, row, values);
    case WeightType::bf16:
      return kernels::cpu::unpack_linear_row_bf16(static_cast<const uint32_t*>(data()), in_features_, row, values);
    case WeightType::q8_0:
      return kernels::cpu::unpack_linear_row_q8_0(static_cast<const uint8_t*>(data()), in_features_, row, values);
    default:
      return kernels::cpu::unpack_linear_row_blocks(*block_type(type_), static_cast<const uint8_t*>(data()),
                                                    in_features_, row, values);
  }
}

void linear(ConstMatrixView x, const PackedWeight& weight, const Tensor* bias, MatrixView out) {
  if (!weight.defined()) throw InvalidArgument("linear: the packed weight is empty (default-constructed)");
  check_arguments(x, weight.out_features(), weight.in_features(), bias, out);
  if (!weight.parts().empty()) {  // each part into its band of output columns
    int64_t begin = 0;
    for (const PackedWeight& part : weight.parts()) {
      const int64_t end = begin + part.out_features();
      Tensor part_bias;
      if (bias != nullptr) part_bias = Tensor::borrow(nullptr, bias->data<float>() + begin, {end - begin}, DType::f32);
      linear(x, part, bias != nullptr ? &part_bias : nullptr, out.columns(begin, end));
      begin = end;
    }
    return;
  }
  switch (weight.type()) {
    case WeightType::f32:
      kernels::cpu::linear_packed(x, static_cast<const float*>(weight.data()), weight.out_features(), bias_data(bias),
                                  out);
      return;
    case WeightType::bf16:
      kernels::cpu::linear_packed_bf16(x, static_cast<const uint32_t*>(weight.data()), weight.out_features(),
                                       bias_data(bias), out, kernels::cpu::best_linear_bf16_path());
      return;
    case WeightType::q8_0:
      kernels::cpu::linear_packed_q8_0(x, static_cast<const uint8_t*>(weight.data()), weight.out_features(),
                                       bias_data(bias), out, q8_0_path());
      return;
    default:
      kernels::cpu::linear_packed_blocks(*block_type(weight.type()), x, static_cast<const uint8_t*>(weight.data()),
                                         weight.out_features(), bias_data(bias), out, q8_0_path());
      return;
  }
}

void linear(const Tensor& x, const PackedWeight& weight, const Tensor* bias, Tensor& out) {
  const auto [x_view, out_view] = matrix_views(x, out);
  linear(x_view, weight, bias, out_view);
}

void linear(ConstMatrixView x, const Tensor& weight, const Tensor* bias, MatrixView out) {
  check_weight(weight);
  check_arguments(x, weight.dim(0), weight.dim(1), bias, out);  // before paying for the packing
  linear(x, PackedWeight(weight), bias, out);
}

void linear(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out) {
  const auto [x_view, out_view] = matrix_views(x, out);
  linear(x_view, weight, bias, out_view);
}

}  // namespace jagged::ops
