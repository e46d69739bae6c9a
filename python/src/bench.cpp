// jagged.bench: the padded-vs-nested report of `jagged bench` (jagged/bench.h, the same library call), as the
// dict that `jagged bench --json` writes.
#include "bindings.h"
#include "jagged/bench.h"

namespace jagged::python {

namespace py = pybind11;

namespace {

py::object bench(const py::object& model, const std::string& dist, int64_t batch, int64_t min_len, int64_t max_len,
                 uint64_t seed, int runs, int warmup, int threads, bool all_logits, const py::object& tokenizer) {
  BenchOptions options;
  options.model = path_string(model);
  options.tokenizer = tokenizer.is_none() ? std::string() : path_string(tokenizer);
  options.workload = {dist, batch, min_len, max_len, seed};
  options.runs = runs;
  options.warmup = warmup;
  options.threads = threads;
  options.all_logits = all_logits;
  std::string json;
  {
    py::gil_scoped_release release;
    json = report_json(run_bench(options).report).dump();
  }
  return py::module_::import("json").attr("loads")(json);
}

}  // namespace

void bind_bench(py::module_& module) {
  module.def("bench", &bench, py::arg("model"), py::arg("dist") = "study", py::arg("batch") = 32,
             py::arg("min_len") = 10, py::arg("max_len") = 256, py::arg("seed") = 555, py::arg("runs") = 5,
             py::arg("warmup") = 1, py::arg("threads") = 0, py::arg("all_logits") = false,
             py::arg("tokenizer") = py::none(),
             R"(Runs the model padded and nested on one batch (as `jagged bench`) and returns the report as a dict:
per-stage median seconds, peak activation memory, parity, ideal ratios, targets (what --json writes).)");
}

}  // namespace jagged::python
