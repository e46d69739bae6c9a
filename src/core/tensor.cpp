#include "jagged/tensor.h"

#include <sys/mman.h>
#include <unistd.h>

#include <bit>
#include <cstdint>
#include <cstring>

#include "core/allocator.h"
#include "core/threads.h"
#include "jagged/error.h"

namespace jagged {

std::string shape_string(const Shape& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

int64_t shape_numel(const Shape& shape) {
  int64_t count = 1;
  for (int64_t extent : shape) {
    if (extent < 0) throw InvalidArgument(concat("negative extent in shape ", shape_string(shape)));
    count *= extent;
  }
  return count;
}

Tensor::Tensor(Shape shape, DType dtype) : shape_(std::move(shape)), dtype_(dtype), defined_(true) {
  const size_t bytes = dtype_nbytes(dtype_, shape_numel(shape_));
  bytes_ = static_cast<std::byte*>(core::allocate_bytes(bytes));
  storage_ = std::shared_ptr<void>(bytes_, [bytes](void* pointer) { core::free_bytes(pointer, bytes); });
}

Tensor Tensor::zeros(Shape shape, DType dtype) {
  Tensor tensor(std::move(shape), dtype);
  std::memset(tensor.bytes_, 0, tensor.nbytes());
  return tensor;
}

Tensor Tensor::from_floats(std::span<const float> values, Shape shape) {
  Tensor tensor(std::move(shape), DType::f32);
  if (static_cast<int64_t>(values.size()) != tensor.numel()) {
    throw InvalidArgument(concat("from_floats: ", values.size(), " values for shape ", shape_string(tensor.shape_)));
  }
  if (tensor.nbytes() > 0) std::memcpy(tensor.bytes_, values.data(), tensor.nbytes());  // empty span: null data
  return tensor;
}

Tensor Tensor::from_ints(std::span<const int32_t> values, Shape shape) {
  Tensor tensor(std::move(shape), DType::i32);
  if (static_cast<int64_t>(values.size()) != tensor.numel()) {
    throw InvalidArgument(concat("from_ints: ", values.size(), " values for shape ", shape_string(tensor.shape_)));
  }
  if (tensor.nbytes() > 0) std::memcpy(tensor.bytes_, values.data(), tensor.nbytes());  // empty span: null data
  return tensor;
}

Tensor Tensor::borrow(std::shared_ptr<const void> owner, const void* data, Shape shape, DType dtype,
                      bool file_backed) {
  Tensor tensor;
  tensor.file_backed_ = file_backed;
  tensor.shape_ = std::move(shape);
  shape_numel(tensor.shape_);  // validates
  tensor.dtype_ = dtype;
  tensor.defined_ = true;
  tensor.storage_ = std::const_pointer_cast<void>(std::move(owner));
  // A borrowed tensor is read through const accessors only by convention (weights); the cast keeps one type.
  tensor.bytes_ = static_cast<std::byte*>(const_cast<void*>(data));
  return tensor;
}

void Tensor::release_file_pages() const {
  if (!file_backed_ || nbytes() == 0) return;
  // Whole pages around the tensor: neighbours sharing its edge pages are file-backed too and read back alike.
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(bytes_) / page * page;
  const auto end = (reinterpret_cast<uintptr_t>(bytes_) + nbytes() + page - 1) / page * page;
  // Advice only: a failure leaves the pages resident, which is still correct.
  (void)madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

Tensor Tensor::clone() const {
  if (!defined_) return Tensor();
  Tensor copy(shape_, dtype_);
  if (nbytes() > 0) std::memcpy(copy.bytes_, bytes_, nbytes());
  return copy;
}

namespace {

// memcpy: a half tensor borrowed from a file may be only 1-byte aligned.
inline uint16_t load_u16(const std::byte* source, int64_t index) {
  uint16_t bits;
  std::memcpy(&bits, source + 2 * index, sizeof(bits));
  return bits;
}

// IEEE half -> float, exact; the same values as jagged::f16_to_f32 (tested exhaustively), but inline and
// branch-light so a conversion loop vectorises.
inline float half_to_float(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1f;
  const uint32_t mantissa = bits & 0x3ff;
  // Subnormals are mantissa * 2^-24, exact in float; normals and inf/nan rebias the exponent.
  const float subnormal = static_cast<float>(mantissa) * 0x1p-24f;
  const uint32_t rebiased = exponent == 31 ? 0x7f800000u | (mantissa << 13) : ((exponent + 112) << 23) | (mantissa << 13);
  const uint32_t magnitude = exponent == 0 ? std::bit_cast<uint32_t>(subnormal) : rebiased;
  return std::bit_cast<float>(sign | magnitude);
}

}  // namespace

Tensor Tensor::to_f32() const {
  if (!defined_) return Tensor();
  if (dtype_ == DType::f32) return clone();
  if (!is_half_dtype(dtype_)) {
    throw InvalidArgument(concat("Tensor::to_f32: cannot widen ", dtype_name(dtype_), " to f32"));
  }
  Tensor converted(shape_, DType::f32);
  float* out = converted.data<float>();
  const std::byte* source = bytes_;
  const bool bf16 = dtype_ == DType::bf16;
  // Plain loops over whole chunks, with the conversions inlined so the compiler vectorises them.
  core::parallel_rows(numel(), 1 << 16, [&](int64_t begin, int64_t end) {
    if (bf16) {
      for (int64_t i = begin; i < end; ++i) out[i] = bf16_to_f32(load_u16(source, i));
    } else {
      for (int64_t i = begin; i < end; ++i) out[i] = half_to_float(load_u16(source, i));
    }
  });
  return converted;
}

int64_t Tensor::dim(int axis) const {
  const int resolved = axis < 0 ? axis + rank() : axis;
  if (resolved < 0 || resolved >= rank()) {
    throw InvalidArgument(concat("axis ", axis, " out of range for shape ", shape_string(shape_)));
  }
  return shape_[static_cast<size_t>(resolved)];
}

void Tensor::reshape(Shape shape) {
  if (shape_numel(shape) != numel()) {
    throw InvalidArgument(concat("cannot reshape ", shape_string(shape_), " to ", shape_string(shape)));
  }
  shape_ = std::move(shape);
}

MatrixView Tensor::matrix() {
  const int64_t rows = rank() == 0 ? 1 : shape_[0];
  const int64_t cols = rows == 0 ? 0 : numel() / rows;
  return {data<float>(), rows, cols, cols};
}

ConstMatrixView Tensor::matrix() const {
  const int64_t rows = rank() == 0 ? 1 : shape_[0];
  const int64_t cols = rows == 0 ? 0 : numel() / rows;
  return {data<float>(), rows, cols, cols};
}

void Tensor::check_dtype(DType wanted) const {
  const bool raw16 = wanted == DType::f16 && is_half_dtype(dtype_);
  if (wanted != dtype_ && !raw16) {
    throw InvalidArgument(concat("tensor of dtype ", dtype_name(dtype_), " accessed as ", dtype_name(wanted)));
  }
}

void check_shape(const Tensor& tensor, const Shape& shape, const char* what, DType dtype) {
  if (!tensor.defined()) throw InvalidArgument(concat(what, ": tensor is undefined, expected ", shape_string(shape)));
  if (tensor.shape() != shape || tensor.dtype() != dtype) {
    throw InvalidArgument(concat(what, ": expected ", shape_string(shape), " ", dtype_name(dtype), ", got ",
                                 shape_string(tensor.shape()), " ", dtype_name(tensor.dtype())));
  }
}

}  // namespace jagged
