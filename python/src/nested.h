// The Python NestedTensor: a jagged::NestedTensor plus whether its values may be written through views (not when
// they are borrowed from a read-only array).
#pragma once

#include <pybind11/pybind11.h>

#include "jagged/nested_tensor.h"

namespace jagged::python {

struct PyNestedTensor {
  NestedTensor tensor;
  bool read_only = false;
};

void bind_nested_tensor(pybind11::module_& module);

}  // namespace jagged::python
