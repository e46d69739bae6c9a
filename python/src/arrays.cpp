#include "arrays.h"

#include <cstring>
#include <memory>

#include "jagged/error.h"

namespace jagged::python {

namespace {

// Dropped on whatever thread releases the Tensor (perhaps one running without the GIL): takes the GIL.
struct ArrayOwner {
  py::object array;
  ~ArrayOwner() {
    py::gil_scoped_acquire gil;
    array = py::object();
  }
};

Shape array_shape(const py::array& array) {
  return Shape(array.shape(), array.shape() + array.ndim());
}

}  // namespace

std::string dtype_string(const py::dtype& dtype) { return py::str(dtype.attr("name")); }

py::dtype numpy_dtype(DType dtype) {
  switch (dtype) {
    case DType::f32: return py::dtype::of<float>();
    case DType::f16: return py::dtype("float16");
    case DType::i32: return py::dtype::of<int32_t>();
    case DType::u8: return py::dtype::of<uint8_t>();
    case DType::bf16: break;
    default: break;  // block types
  }
  throw InvalidArgument(concat("dtype ", dtype_name(dtype), " has no NumPy equivalent"));
}

DType jagged_dtype(const py::dtype& dtype, const std::string& what) {
  const char kind = dtype.kind();
  const auto size = dtype.itemsize();
  if (kind == 'f' && size == 4) return DType::f32;
  if (kind == 'f' && size == 2) return DType::f16;
  if (kind == 'i' && size == 4) return DType::i32;
  if ((kind == 'u' || kind == 'b') && size == 1) return DType::u8;
  throw InvalidArgument(concat(what, ": dtype ", dtype_string(dtype),
                               " is not supported; use float32, float16, int32 or uint8 (convert with .astype)"));
}

py::array view_array(const void* data, const Shape& shape, DType dtype, py::handle owner, bool writeable) {
  std::vector<py::ssize_t> extents(shape.begin(), shape.end());
  std::vector<py::ssize_t> strides(shape.size());
  py::ssize_t stride = static_cast<py::ssize_t>(dtype_size(dtype));
  for (size_t axis = shape.size(); axis-- > 0;) {
    strides[axis] = stride;
    stride *= static_cast<py::ssize_t>(shape[axis]);
  }
  py::array array(numpy_dtype(dtype), extents, strides, data, owner);
  if (!writeable) array.attr("flags").attr("writeable") = false;
  return array;
}

py::array to_numpy(Tensor&& tensor) {
  auto* owned = new Tensor(std::move(tensor));
  py::capsule owner(owned, [](void* pointer) { delete static_cast<Tensor*>(pointer); });
  return view_array(owned->raw_data(), owned->shape(), owned->dtype(), owner);
}

Tensor borrow_array(const py::array& array, const std::string& what) {
  const DType dtype = jagged_dtype(array.dtype(), what);
  if (!(array.flags() & py::array::c_style)) {
    throw InvalidArgument(concat(what, ": the array is not C-contiguous, so it cannot be shared without a copy; pass "
                                       "np.ascontiguousarray(array)"));
  }
  auto owner = std::make_shared<ArrayOwner>();
  owner->array = array;
  return Tensor::borrow(std::shared_ptr<const void>(owner, owner.get()), array.data(), array_shape(array), dtype);
}

Tensor copy_array(const py::array& array, const std::string& what) {
  const DType dtype = jagged_dtype(array.dtype(), what);
  // ascontiguousarray copies only when the strides need it; the copy below makes the Tensor own its memory.
  const py::array contiguous = py::module_::import("numpy").attr("ascontiguousarray")(array);
  Tensor tensor(array_shape(contiguous), dtype);
  if (tensor.nbytes() > 0) std::memcpy(tensor.raw_data(), contiguous.data(), tensor.nbytes());
  return tensor;
}

std::vector<int64_t> to_int64_vector(py::handle values, const std::string& what) {
  const py::module_ numpy = py::module_::import("numpy");
  py::array array;
  try {
    array = numpy.attr("asarray")(values);
  } catch (const py::error_already_set& error) {
    throw InvalidArgument(concat(what, ": not an array of integers (", error.what(), ")"));
  }
  if (array.ndim() != 1) {
    throw InvalidArgument(concat(what, ": expected a flat sequence of integers, got ", array.ndim(), " dimensions"));
  }
  if (array.size() == 0) return {};
  const char kind = array.dtype().kind();
  if (kind != 'i' && kind != 'u') {
    throw InvalidArgument(concat(what, ": expected integers, got dtype ", dtype_string(array.dtype())));
  }
  if (kind == 'u' && array.dtype().itemsize() == 8) {
    // uint64 above int64's range would wrap in the cast below.
    const py::object largest = array.attr("max")();
    if (largest.cast<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      throw InvalidArgument(concat(what, ": integer ", std::string(py::str(largest)), " is out of range"));
    }
  }
  const auto as_int64 = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(array);
  return std::vector<int64_t>(as_int64.data(), as_int64.data() + as_int64.size());
}

std::vector<int32_t> to_token_ids(py::handle values, int64_t vocab_size, const std::string& what) {
  const std::vector<int64_t> wide = to_int64_vector(values, what);
  std::vector<int32_t> ids(wide.size());
  for (size_t i = 0; i < wide.size(); ++i) {
    if (wide[i] < 0 || wide[i] >= vocab_size) {
      throw InvalidArgument(concat(what, ": token id ", wide[i], " at position ", i, " is outside the vocabulary [0, ",
                                   vocab_size, ")"));
    }
    ids[i] = static_cast<int32_t>(wide[i]);
  }
  return ids;
}

}  // namespace jagged::python
