// The _jagged extension module (python/jagged/__init__.py re-exports it). jagged's errors become Python
// exceptions carrying jagged's messages: InvalidArgument -> jagged.InvalidArgument (a ValueError), FileError ->
// jagged.FileError (an OSError), any other jagged::Error -> RuntimeError.
#include <pybind11/pybind11.h>

#include "bindings.h"
#include "jagged/error.h"
#include "jagged/threads.h"

namespace py = pybind11;

PYBIND11_MODULE(_jagged, module) {
  module.doc() = "jagged: transformer inference on nested (ragged) batches, no padding";
  static py::exception<jagged::InvalidArgument> invalid_argument(module, "InvalidArgument", PyExc_ValueError);
  static py::exception<jagged::FileError> file_error(module, "FileError", PyExc_OSError);
  py::register_exception_translator([](std::exception_ptr error) {
    try {
      if (error) std::rethrow_exception(error);
    } catch (const jagged::InvalidArgument& e) {
      invalid_argument(e.what());
    } catch (const jagged::FileError& e) {
      file_error(e.what());
    } catch (const jagged::Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    }
  });
  jagged::python::bind_nested_tensor(module);
  jagged::python::bind_tokenizer(module);
  jagged::python::bind_models(module);
  jagged::python::bind_bench(module);
  module.def("num_threads", &jagged::num_threads, "Threads jagged's parallel regions use");
  module.def("set_num_threads", &jagged::set_num_threads, py::arg("count"), "Threads to use (<= 0: all cores)");
}
