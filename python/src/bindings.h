// The pieces of the _jagged extension module, one bind_* per file.
#pragma once

#include <pybind11/pybind11.h>

#include <string>
#include <string_view>

namespace jagged::python {

void bind_nested_tensor(pybind11::module_& module);  // nested.cpp
void bind_tokenizer(pybind11::module_& module);      // tokenizer.cpp
void bind_models(pybind11::module_& module);         // models.cpp: Model, load
void bind_bench(pybind11::module_& module);          // bench.cpp

// A str or os.PathLike as a path string (os.fspath).
std::string path_string(const pybind11::object& path);
// Text that may hold invalid UTF-8 (a decoded token can split a character) as str, bad bytes as U+FFFD.
pybind11::str utf8_text(std::string_view bytes);

}  // namespace jagged::python
