// NumPy <-> jagged tensors. Views share memory both ways where the layout allows: a jagged Tensor is shown to
// NumPy with a base object that keeps it alive, and a C-contiguous NumPy array of a jagged dtype is borrowed by a
// Tensor that keeps the array alive. Everything else raises ValueError (never a crash).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "jagged/tensor.h"

namespace jagged::python {

namespace py = pybind11;

// "float32", "int64", ...
std::string dtype_string(const py::dtype& dtype);
// The NumPy dtype of a jagged dtype (bf16 has none: ValueError).
py::dtype numpy_dtype(DType dtype);
// The jagged dtype of a NumPy dtype: float32, float16, int32, uint8 (bool reads as uint8); ValueError naming
// `what` and the supported dtypes otherwise.
DType jagged_dtype(const py::dtype& dtype, const std::string& what);

// A NumPy view of `data` (row-major `shape`, `dtype`) whose base object `owner` keeps the memory alive.
py::array view_array(const void* data, const Shape& shape, DType dtype, py::handle owner, bool writeable = true);
// Moves the tensor into a NumPy array that owns it (no copy).
py::array to_numpy(Tensor&& tensor);

// A Tensor that borrows a C-contiguous array's memory (the array stays alive as long as the Tensor);
// ValueError when the array is not C-contiguous or not of a jagged dtype.
Tensor borrow_array(const py::array& array, const std::string& what);
// A Tensor holding a copy of any array (any strides) of a jagged dtype.
Tensor copy_array(const py::array& array, const std::string& what);

// Integers of any NumPy integer dtype (or a sequence of Python ints) as int64, ValueError for anything else
// (floats, strings, nested lists).
std::vector<int64_t> to_int64_vector(py::handle values, const std::string& what);
// Token ids: integers in [0, vocab_size); ValueError naming the sequence and the bad id.
std::vector<int32_t> to_token_ids(py::handle values, int64_t vocab_size, const std::string& what);

}  // namespace jagged::python
