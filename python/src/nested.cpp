// jagged.NestedTensor: values [num_tokens, inner...] + cu_seqlens [num_seqs + 1] int32, shown to NumPy without
// copies (values, cu_seqlens and each sequence are views whose base keeps the tensor alive).
#include "nested.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <limits>

#include "arrays.h"
#include "jagged/error.h"

namespace jagged::python {

namespace {

namespace py = pybind11;

std::vector<int32_t> to_cu_seqlens(py::handle values) {
  const std::vector<int64_t> wide = to_int64_vector(values, "cu_seqlens");
  std::vector<int32_t> offsets(wide.size());
  for (size_t i = 0; i < wide.size(); ++i) {
    if (wide[i] < 0 || wide[i] > std::numeric_limits<int32_t>::max()) {
      throw InvalidArgument(concat("cu_seqlens[", i, "] = ", wide[i], " is outside [0, 2^31)"));
    }
    offsets[i] = static_cast<int32_t>(wide[i]);
  }
  return offsets;
}

// One element of from_list as an array of a jagged dtype. With `dtype`, values are converted to it (integers
// checked against its range; floats never silently truncated to integers). Without, arrays keep their dtype (and
// must have a jagged one) while plain Python lists become int32 or float32.
py::array sequence_array(py::handle sequence, const py::object& dtype, size_t index) {
  const py::module_ numpy = py::module_::import("numpy");
  const std::string what = concat("sequence ", index);
  py::array array;
  try {
    array = numpy.attr("asarray")(sequence);
  } catch (const py::error_already_set& error) {
    throw InvalidArgument(concat(what, ": not an array (", error.what(), ")"));
  }
  if (array.ndim() < 1) throw InvalidArgument(concat(what, ": a scalar; each sequence needs a token axis"));
  const bool plain = !py::isinstance<py::array>(sequence);
  py::dtype target = array.dtype();
  if (!dtype.is_none()) {
    target = py::dtype::from_args(dtype);
  } else if (plain && (array.dtype().kind() == 'i' || array.dtype().kind() == 'u')) {
    target = py::dtype::of<int32_t>();
  } else if (plain && array.dtype().kind() == 'f') {
    target = py::dtype::of<float>();
  }
  jagged_dtype(target, what);  // validates the target
  if (target.is(array.dtype()) || target.equal(array.dtype())) return array;
  const char from = array.dtype().kind(), to = target.kind();
  if ((to == 'i' || to == 'u') && from == 'f') {
    throw InvalidArgument(concat(what, ": float values would be truncated to ", dtype_string(target)));
  }
  if ((to == 'i' || to == 'u') && (from == 'i' || from == 'u') && array.size() > 0) {
    const py::object info = numpy.attr("iinfo")(target);
    const py::object low = array.attr("min")(), high = array.attr("max")();
    if (low < info.attr("min") || high > info.attr("max")) {
      throw InvalidArgument(concat(what, ": values in [", std::string(py::str(low)), ", ", std::string(py::str(high)),
                                   "] do not fit ", dtype_string(target)));
    }
  }
  try {
    return array.attr("astype")(target);
  } catch (const py::error_already_set& error) {
    throw InvalidArgument(concat(what, ": cannot convert to ", dtype_string(target), " (", error.what(), ")"));
  }
}

PyNestedTensor from_list(const py::sequence& sequences, const py::object& dtype) {
  if (py::isinstance<py::str>(sequences) || py::isinstance<py::bytes>(sequences)) {
    throw InvalidArgument("from_list: expected a list of arrays, got a string");
  }
  if (sequences.size() == 0) {
    const DType empty_dtype = dtype.is_none() ? DType::f32 : jagged_dtype(py::dtype::from_args(dtype), "dtype");
    return {NestedTensor(Tensor(Shape{0}, empty_dtype), {0}), false};
  }
  std::vector<py::array> arrays;
  for (size_t i = 0; i < sequences.size(); ++i) arrays.push_back(sequence_array(sequences[i], dtype, i));
  // An empty plain list ([]) takes the dtype and inner shape of the first sequence that has tokens.
  const auto reference = std::find_if(arrays.begin(), arrays.end(), [](const py::array& a) { return a.size() > 0; });
  std::vector<Tensor> parts;
  for (size_t i = 0; i < arrays.size(); ++i) {
    py::array array = arrays[i];
    const bool plain_empty = !py::isinstance<py::array>(sequences[i]) && array.size() == 0 && array.ndim() == 1;
    if (plain_empty && reference != arrays.end()) {
      py::list shape;
      shape.append(0);
      for (py::ssize_t axis = 1; axis < reference->ndim(); ++axis) shape.append(reference->shape(axis));
      array = array.attr("astype")(reference->dtype()).attr("reshape")(py::tuple(shape));
    }
    parts.push_back(copy_array(array, concat("sequence ", i)));
  }
  return {NestedTensor::from_sequences(parts), false};
}

PyNestedTensor from_padded(const py::array& padded, py::handle lengths) {
  const std::vector<int64_t> lengths_vector = to_int64_vector(lengths, "lengths");
  const bool contiguous = (padded.flags() & py::array::c_style) != 0;
  const Tensor source = contiguous ? borrow_array(padded, "padded") : copy_array(padded, "padded");
  return {NestedTensor::from_padded(source, lengths_vector), false};
}

py::array sequence_view(py::object self, int64_t index) {
  const auto& nested = self.cast<const PyNestedTensor&>();
  const int64_t count = nested.tensor.num_seqs();
  if (index < 0) index += count;
  if (index < 0 || index >= count) {
    throw py::index_error(concat("sequence index ", index, " out of range for ", count, " sequences"));
  }
  const SequenceView view = nested.tensor.sequence(index);
  return view_array(view.data, view.shape, view.dtype, self, !nested.read_only);
}

std::string repr(const PyNestedTensor& nested) {
  const NestedTensor& tensor = nested.tensor;
  std::string lengths;
  const std::vector<int64_t> all = tensor.seqlens();
  for (size_t i = 0; i < all.size() && i < 8; ++i) {
    if (i > 0) lengths += ", ";
    lengths += std::to_string(all[i]);
  }
  if (all.size() > 8) lengths += ", ...";
  return concat("jagged.NestedTensor(num_seqs=", tensor.num_seqs(), ", num_tokens=", tensor.num_tokens(),
                ", seqlens=[", lengths, "], inner_shape=", shape_string(tensor.inner_shape()),
                ", dtype=", dtype_name(tensor.dtype()), ")");
}

}  // namespace

void bind_nested_tensor(py::module_& module) {
  py::class_<PyNestedTensor>(module, "NestedTensor", R"(A ragged batch: values [num_tokens, ...] packed one sequence
after another, and cu_seqlens [num_seqs + 1] int32 offsets (sequence i is rows cu_seqlens[i]:cu_seqlens[i+1]).

NestedTensor(values, cu_seqlens) shares the memory of a C-contiguous float32/float16/int32/uint8 array
(no copy); from_list and from_padded copy.)")
      .def(py::init([](py::handle values_arg, py::handle cu_seqlens) {
             if (!py::isinstance<py::array>(values_arg)) {
               throw InvalidArgument("values: expected a NumPy array [num_tokens, ...] (from_list copies other data)");
             }
             const auto values = py::reinterpret_borrow<py::array>(values_arg);
             const bool read_only = !values.writeable();
             return PyNestedTensor{NestedTensor(borrow_array(values, "values"), to_cu_seqlens(cu_seqlens)), read_only};
           }),
           py::arg("values"), py::arg("cu_seqlens"))
      .def_static("from_list", &from_list, py::arg("sequences"), py::arg("dtype") = py::none(),
                  "Packs copies of the sequences (each [len, ...], the same inner shape). Arrays keep their dtype; "
                  "plain lists become int32 or float32; dtype= converts (checked).")
      .def_static("from_padded", &from_padded, py::arg("padded"), py::arg("lengths"),
                  "Keeps the first lengths[i] rows of padded[i] ([num_seqs, max_seqlen, ...]).")
      .def_property_readonly("values", [](py::object self) {
            const auto& nested = self.cast<const PyNestedTensor&>();
            const Tensor& values = nested.tensor.values();
            return view_array(values.raw_data(), values.shape(), values.dtype(), self, !nested.read_only);
          }, "[num_tokens, ...]: a view (no copy)")
      .def_property_readonly("cu_seqlens", [](py::object self) {
            const std::span<const int32_t> offsets = self.cast<const PyNestedTensor&>().tensor.cu_seqlens();
            return view_array(offsets.data(), {static_cast<int64_t>(offsets.size())}, DType::i32, self, false);
          }, "[num_seqs + 1] int32 offsets (a read-only view)")
      .def_property_readonly("seqlens", [](const PyNestedTensor& nested) {
            const std::vector<int64_t> lengths = nested.tensor.seqlens();
            return py::array_t<int64_t>(static_cast<py::ssize_t>(lengths.size()), lengths.data());
          })
      .def_property_readonly("num_seqs", [](const PyNestedTensor& nested) { return nested.tensor.num_seqs(); })
      .def_property_readonly("num_tokens", [](const PyNestedTensor& nested) { return nested.tensor.num_tokens(); })
      .def_property_readonly("max_seqlen", [](const PyNestedTensor& nested) { return nested.tensor.max_seqlen(); })
      .def_property_readonly("inner_shape", [](const PyNestedTensor& nested) {
            const Shape inner = nested.tensor.inner_shape();
            return py::tuple(py::cast(std::vector<int64_t>(inner.begin(), inner.end())));
          })
      .def_property_readonly("dtype", [](const PyNestedTensor& nested) { return numpy_dtype(nested.tensor.dtype()); })
      .def("__len__", [](const PyNestedTensor& nested) { return nested.tensor.num_seqs(); })
      .def("__getitem__", &sequence_view, py::arg("index"), "Sequence i as a view [len_i, ...] (no copy)")
      .def("to_padded", [](const PyNestedTensor& nested, double pad_value) {
            PaddedTensor padded = nested.tensor.to_padded(pad_value);
            py::array mask = to_numpy(std::move(padded.mask));
            return py::make_tuple(to_numpy(std::move(padded.values)), mask.attr("view")("bool"));
          }, py::arg("pad_value") = 0.0,
          "(padded [num_seqs, max_seqlen, ...], mask [num_seqs, max_seqlen] bool, True on real tokens); float32 "
          "and int32 values")
      .def("clone", [](const PyNestedTensor& nested) { return PyNestedTensor{nested.tensor.clone(), false}; },
           "A copy that owns its memory")
      .def("__repr__", &repr);
}

}  // namespace jagged::python
