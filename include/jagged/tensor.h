// Tensor: an owning, move-only, row-major block of elements with a shape. Memory comes from the accounting
// allocator (or is borrowed from a memory-mapped file that the tensor keeps alive). Copies are explicit: clone().
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "jagged/dtype.h"
#include "jagged/error.h"

namespace jagged {

using Shape = std::vector<int64_t>;

std::string shape_string(const Shape& shape);  // "[3, 4]"
int64_t shape_numel(const Shape& shape);

// A non-owning row-major matrix with a row stride in elements: rows of a tensor, or a band of its columns
// (the Q part of a fused QKV projection). Cheap, passed by value.
template <typename T>
struct MatrixRef {
  T* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t row_stride = 0;  // elements between the starts of consecutive rows (>= cols)

  T* row(int64_t i) const { return data + i * row_stride; }
  // Columns [begin, end) of every row.
  MatrixRef columns(int64_t begin, int64_t end) const { return {data + begin, rows, end - begin, row_stride}; }
  // Rows [begin, end).
  MatrixRef row_range(int64_t begin, int64_t end) const { return {data + begin * row_stride, end - begin, cols, row_stride}; }
  operator MatrixRef<const T>() const { return {data, rows, cols, row_stride}; }
};
using MatrixView = MatrixRef<float>;
using ConstMatrixView = MatrixRef<const float>;

class Tensor {
 public:
  Tensor() = default;
  // Uninitialised storage from the accounting allocator.
  explicit Tensor(Shape shape, DType dtype = DType::f32);
  static Tensor zeros(Shape shape, DType dtype = DType::f32);
  static Tensor from_floats(std::span<const float> values, Shape shape);
  static Tensor from_ints(std::span<const int32_t> values, Shape shape);
  // Wraps memory owned elsewhere (a mapped file, a huge-page chunk); `owner` keeps it alive. Not counted by the
  // allocator (an owner that allocates counts itself, as core::huge_page_tensor does).
  // file_backed: the memory is a read-only mapping of a file, whose pages the kernel can drop and read again.
  static Tensor borrow(std::shared_ptr<const void> owner, const void* data, Shape shape, DType dtype,
                       bool file_backed = false);

  Tensor(Tensor&&) noexcept = default;
  Tensor& operator=(Tensor&&) noexcept = default;
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;

  Tensor clone() const;
  // An owned f32 copy: f32 copied, f16/bf16 widened exactly (weights kept in a file's half type until packed);
  // other dtypes: InvalidArgument.
  Tensor to_f32() const;
  // Drops the pages of a file-backed borrowed tensor from the process's resident memory (the values stay: the
  // next read brings them back from the file); no-op for any other tensor. Called once a copy has been made
  // (packing), so a weight is resident once.
  void release_file_pages() const;
  bool file_backed() const { return file_backed_; }

  bool defined() const { return defined_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int axis) const;  // negative axes count from the end
  int64_t numel() const { return shape_numel(shape_); }
  DType dtype() const { return dtype_; }
  size_t nbytes() const { return dtype_nbytes(dtype_, numel()); }

  // Typed access; throws InvalidArgument when T does not match dtype().
  template <typename T>
  T* data() {
    check_dtype(dtype_of<T>());
    return reinterpret_cast<T*>(bytes_);
  }
  template <typename T>
  const T* data() const {
    check_dtype(dtype_of<T>());
    return reinterpret_cast<const T*>(bytes_);
  }
  void* raw_data() { return bytes_; }
  const void* raw_data() const { return bytes_; }

  // Same elements, new shape with the same element count. Throws otherwise.
  void reshape(Shape shape);
  // Rank-2 f32 view: [dim(0), numel / dim(0)].
  MatrixView matrix();
  ConstMatrixView matrix() const;

 private:
  void check_dtype(DType wanted) const;

  Shape shape_;
  DType dtype_ = DType::f32;
  bool defined_ = false;
  bool file_backed_ = false;
  std::shared_ptr<void> storage_;
  std::byte* bytes_ = nullptr;
};

// Throws InvalidArgument naming `what` when `tensor` is not of `shape` and `dtype`.
void check_shape(const Tensor& tensor, const Shape& shape, const char* what, DType dtype = DType::f32);

}  // namespace jagged
