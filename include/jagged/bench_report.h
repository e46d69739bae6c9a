// What a padded-vs-nested benchmark measured (jagged/bench.h runs it), and how it is shown: a table on stdout,
// JSON (what `jagged bench --json` writes and Python's jagged.bench returns), and an SVG picture.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace jagged {

struct PathResult {
  std::string name;                                     // "padded" or "nested"
  std::vector<double> run_seconds;                      // one per measured run
  std::vector<std::pair<std::string, double>> stages;   // median seconds per stage, in forward order
  int64_t peak_activation_bytes = 0;                    // allocator peak above the weights, largest over runs
  double flops = 0.0;                                   // FLOPs this path performs (its own rows and pairs)
  double median_seconds() const;
};

struct ParityStats {
  double max_abs = 0.0;
  double max_rel = 0.0;                  // max |a - b| / max |b|
  std::vector<double> bin_edges_log10;   // histogram of log10 |a - b|
  std::vector<int64_t> bin_counts;
  int64_t exact_zero = 0;                // differences that are exactly 0
};

struct BenchReport {
  std::string model;
  std::string distribution;
  std::vector<int64_t> lengths;
  int64_t real_tokens = 0;
  int64_t padded_tokens = 0;
  int threads = 0;
  double fp32_peak_gflops = 0.0;
  double real_flops = 0.0;      // FLOPs of the real work (real tokens, causal pairs)
  double ideal_time_ratio = 0;  // padded FLOPs / real FLOPs
  double ideal_memory_ratio = 0;  // padded / real activation rows
  int64_t process_peak_rss_bytes = 0;
  PathResult padded;
  PathResult nested;
  ParityStats parity;
  nlohmann::json extra;         // e.g. the PyTorch comparison
  std::optional<double> llamacpp_tokens_per_second;  // llama.cpp's fastest path on this batch (--compare-llamacpp)
};

// One of the targets, checked on this run: measured >= goal (or <= goal when at_most).
struct TargetCheck {
  std::string name;
  double measured = 0.0;
  double goal = 0.0;
  bool at_most = false;
  bool met() const { return at_most ? measured <= goal : measured >= goal; }
};

// Prints "target: NAME: MEASURED (goal >= GOAL): met|MISSED" and returns it as JSON.
nlohmann::json report_target(const TargetCheck& target);
// The targets that read only jagged's own two paths: time and memory against the ideal ratios, equal lengths
// not slower, and real tokens/s against 1.5x llama.cpp's on the same batch (when --compare-llamacpp measured it;
// for smollm-135m on the study's batch, reported as not measured otherwise).
std::vector<TargetCheck> own_targets(const BenchReport& report);

ParityStats compare_outputs(const float* actual, const float* expected, int64_t count);
void print_report(const BenchReport& report);
nlohmann::json report_json(const BenchReport& report);
std::string report_svg(const BenchReport& report);

}  // namespace jagged
