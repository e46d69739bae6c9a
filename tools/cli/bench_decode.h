// jagged bench --decode: the options that only the decode benchmark reads (the model, threads, seed, JSON path
// and --compare-llamacpp are bench's own), and the command that formats jagged::run_decode_bench's report.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "jagged/decode_bench.h"

namespace jagged::cli {

struct DecodeBenchArgs {
  bool enabled = false;         // --decode
  DecodeBenchOptions options;
  int64_t prompt_len = 0;       // > 0: every prompt this long (sets min and max)
  int64_t new_tokens = 0;       // > 0: every output this long
  bool no_padded = false;
  bool no_step_probe = false;
};

void add_decode_bench_options(CLI::App& command, DecodeBenchArgs& args);

// Runs the benchmark and prints its table; writes the JSON report (with the command that reproduces it) when
// json_path is set.
// dtype: the weights in memory, as bench's --dtype.
void bench_decode(DecodeBenchArgs args, const std::string& model, const std::string& dtype, int threads,
                  uint64_t seed, const std::string& json_path, bool compare_llamacpp);

}  // namespace jagged::cli
