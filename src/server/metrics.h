// Server metrics in Prometheus' text format: counters, gauges and cumulative histograms, updated by the scheduler
// thread and read by /metrics. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "jagged/engine.h"

namespace jagged::server {

// A Prometheus histogram: counts of observations at or below each upper bound, their sum and count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // "# TYPE name histogram" and the name_bucket{le=...}, name_sum, name_count lines.
  std::string render(const std::string& name, const std::string& help) const;

 private:
  std::vector<double> upper_bounds_;
  std::vector<int64_t> counts_;  // per bucket (not cumulative); the last one is +Inf
  double sum_ = 0.0;
  int64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();
  void observe_step(int64_t batch_tokens);
  void observe_time_to_first_token(double seconds);
  void observe_inter_token_latency(double seconds);
  void count_finished(FinishReason reason);
  void observe_embedding_batch(int64_t inputs, int64_t tokens);  // one nested encoder batch
  void count_rejected(int status);    // HTTP errors returned, by status
  void count_request(const std::string& route);
  // The whole exposition; `engine` holds the live gauges (null before the model is loaded).
  std::string render(const EngineStats* engine, int64_t in_flight) const;

 private:
  mutable std::mutex mutex_;
  Histogram batch_tokens_;
  Histogram time_to_first_token_;
  Histogram inter_token_latency_;
  std::map<std::string, int64_t> finished_;  // by finish reason
  std::map<int, int64_t> rejected_;          // by HTTP status
  std::map<std::string, int64_t> requests_;  // by route
  int64_t embedding_batches_ = 0;
  int64_t embedding_inputs_ = 0;
  int64_t embedding_tokens_ = 0;
};

}  // namespace jagged::server
