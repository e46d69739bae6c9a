#include "server/metrics.h"

#include <cmath>
#include <sstream>

namespace jagged::server {
namespace {

std::string number(double value) {
  if (std::isinf(value)) return "+Inf";
  std::ostringstream out;
  out.precision(12);
  out << value;
  return out.str();
}

std::vector<double> powers_of_two(double first, int count) {
  std::vector<double> bounds;
  for (int i = 0; i < count; ++i) bounds.push_back(first * std::ldexp(1.0, i));
  return bounds;
}

void gauge(std::ostringstream& out, const std::string& name, const std::string& help, int64_t value,
           const char* type = "gauge") {
  out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n" << name << " " << value
      << "\n";
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)), counts_(upper_bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  size_t bucket = 0;
  while (bucket < upper_bounds_.size() && value > upper_bounds_[bucket]) ++bucket;
  ++counts_[bucket];
  sum_ += value;
  ++count_;
}

std::string Histogram::render(const std::string& name, const std::string& help) const {
  std::ostringstream out;
  out << "# HELP " << name << " " << help << "\n# TYPE " << name << " histogram\n";
  int64_t cumulative = 0;
  for (size_t bucket = 0; bucket < counts_.size(); ++bucket) {
    cumulative += counts_[bucket];
    const double bound = bucket < upper_bounds_.size() ? upper_bounds_[bucket] : INFINITY;
    out << name << "_bucket{le=\"" << number(bound) << "\"} " << cumulative << "\n";
  }
  out << name << "_sum " << number(sum_) << "\n" << name << "_count " << count_ << "\n";
  return out.str();
}

Metrics::Metrics()
    : batch_tokens_(powers_of_two(1, 14)),
      time_to_first_token_(powers_of_two(0.001, 16)),
      inter_token_latency_(powers_of_two(0.0005, 16)) {}

void Metrics::observe_step(int64_t batch_tokens) {
  std::lock_guard lock(mutex_);
  batch_tokens_.observe(static_cast<double>(batch_tokens));
}

void Metrics::observe_time_to_first_token(double seconds) {
  std::lock_guard lock(mutex_);
  time_to_first_token_.observe(seconds);
}

void Metrics::observe_inter_token_latency(double seconds) {
  std::lock_guard lock(mutex_);
  inter_token_latency_.observe(seconds);
}

void Metrics::count_finished(FinishReason reason) {
  std::lock_guard lock(mutex_);
  ++finished_[finish_reason_name(reason)];
}

void Metrics::observe_embedding_batch(int64_t inputs, int64_t tokens) {
  std::lock_guard lock(mutex_);
  ++embedding_batches_;
  embedding_inputs_ += inputs;
  embedding_tokens_ += tokens;
  batch_tokens_.observe(static_cast<double>(tokens));
}

void Metrics::count_rejected(int status) {
  std::lock_guard lock(mutex_);
  ++rejected_[status];
}

void Metrics::count_request(const std::string& route) {
  std::lock_guard lock(mutex_);
  ++requests_[route];
}

std::string Metrics::render(const EngineStats* engine, int64_t in_flight) const {
  std::ostringstream out;
  gauge(out, "jagged_model_loaded", "1 once the model is loaded and requests are served", engine != nullptr);
  gauge(out, "jagged_requests_in_flight", "requests accepted and not yet answered", in_flight);
  if (engine != nullptr) {
    gauge(out, "jagged_requests_running", "requests holding KV cache blocks", engine->running);
    gauge(out, "jagged_requests_waiting", "requests waiting for admission (or preempted)", engine->waiting);
    gauge(out, "jagged_kv_blocks_used", "KV cache blocks in use", engine->kv_blocks_used);
    gauge(out, "jagged_kv_blocks_free", "KV cache blocks free", engine->kv_blocks_total - engine->kv_blocks_used);
    gauge(out, "jagged_kv_block_tokens", "tokens per KV cache block", engine->kv_block_tokens);
    gauge(out, "jagged_engine_steps_total", "engine steps run", engine->steps, "counter");
    gauge(out, "jagged_prompt_tokens_total", "prompt tokens prefilled (recomputation included)",
          engine->prompt_tokens, "counter");
    gauge(out, "jagged_generation_tokens_total", "tokens generated", engine->generated_tokens, "counter");
    gauge(out, "jagged_preemptions_total", "requests evicted from the KV cache and recomputed", engine->preemptions,
          "counter");
  }
  std::lock_guard lock(mutex_);
  out << "# HELP jagged_requests_total HTTP requests by route\n# TYPE jagged_requests_total counter\n";
  for (const auto& [route, count] : requests_) out << "jagged_requests_total{route=\"" << route << "\"} " << count << "\n";
  out << "# HELP jagged_requests_finished_total generation requests finished, by reason\n"
      << "# TYPE jagged_requests_finished_total counter\n";
  for (const char* reason : {"stop", "length", "context", "cancelled"}) {
    const auto found = finished_.find(reason);
    out << "jagged_requests_finished_total{reason=\"" << reason << "\"} " << (found == finished_.end() ? 0 : found->second)
        << "\n";
  }
  out << "# HELP jagged_http_errors_total error responses, by status\n# TYPE jagged_http_errors_total counter\n";
  for (const auto& [status, count] : rejected_) out << "jagged_http_errors_total{status=\"" << status << "\"} " << count << "\n";
  gauge(out, "jagged_embedding_batches_total", "nested encoder batches run", embedding_batches_, "counter");
  gauge(out, "jagged_embedding_inputs_total", "inputs embedded", embedding_inputs_, "counter");
  gauge(out, "jagged_embedding_tokens_total", "tokens encoded", embedding_tokens_, "counter");
  out << batch_tokens_.render("jagged_batch_tokens", "tokens per engine step (decode rows + prefill chunks) or encoder batch");
  out << time_to_first_token_.render("jagged_time_to_first_token_seconds",
                                     "from a request's arrival to its first generated token");
  out << inter_token_latency_.render("jagged_inter_token_latency_seconds", "between consecutive generated tokens");
  return out.str();
}

}  // namespace jagged::server
