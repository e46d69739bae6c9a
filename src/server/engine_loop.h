// The scheduler loop of the server: it owns the stepping of one Engine, on the server's compute thread
// (core/compute_thread.h: the thread that loaded the model, so that one OpenMP pool does all the work). HTTP handler
// threads submit requests and read their events from a per-request queue (a condition variable wakes them); the loop
// steps whenever the engine has work and routes each event to its request's queue. Cancelling (a client gone, shutdown)
// goes through the engine, which frees the request's blocks at its next step.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/compute_thread.h"
#include "jagged/engine.h"
#include "server/metrics.h"

namespace jagged::server {

// The events of one request, in order, and its result once finished.
class RequestStream {
 public:
  using Clock = std::chrono::steady_clock;

  RequestStream(RequestId id, int64_t prompt_tokens) : id_(id), prompt_tokens_(prompt_tokens) {}
  RequestId id() const { return id_; }
  int64_t prompt_tokens() const { return prompt_tokens_; }

  // The events queued since the last call, waiting up to `timeout` for one; empty on timeout.
  std::vector<RequestEvent> wait(std::chrono::milliseconds timeout);
  // True once the finishing event was queued; result() and error() are then set.
  bool finished() const;
  RequestResult result() const;
  std::string error() const;  // non-empty when the engine failed (the request then finished as cancelled)

  // Called by the loop.
  void push(RequestEvent event, std::optional<RequestResult> result);
  void fail(const std::string& message);
  Clock::time_point submitted = Clock::now();
  Clock::time_point last_token;  // loop thread only
  bool has_token = false;        // loop thread only

 private:
  const RequestId id_;
  const int64_t prompt_tokens_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<RequestEvent> events_;
  bool finished_ = false;
  RequestResult result_;
  std::string error_;
};

class QueueFull : public Error {
 public:
  using Error::Error;
};

class EngineLoop {
 public:
  // max_in_flight: requests accepted at once (running + waiting); more get QueueFull.
  // The loop runs on `compute` until destruction.
  EngineLoop(Engine& engine, Metrics& metrics, int64_t max_in_flight, int step_delay_ms, core::ComputeThread& compute);
  ~EngineLoop();  // cancels what is left and waits for the loop to end
  EngineLoop(const EngineLoop&) = delete;
  EngineLoop& operator=(const EngineLoop&) = delete;

  // Queues a request. InvalidArgument from the engine (bad request), QueueFull when max_in_flight are in flight.
  std::shared_ptr<RequestStream> submit(GenerationRequest request);
  void cancel(RequestId id);
  void cancel_all();
  int64_t in_flight() const;
  // Waits until no request is in flight or `deadline`; true when none is.
  bool wait_idle(std::chrono::steady_clock::time_point deadline);

 private:
  void run();
  void dispatch(std::vector<RequestEvent>& events);

  Engine& engine_;
  Metrics& metrics_;
  const int64_t max_in_flight_;
  const int step_delay_ms_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;   // the loop: work arrived or stopping
  std::condition_variable idle_;   // wait_idle: a request finished
  std::map<RequestId, std::shared_ptr<RequestStream>> streams_;
  bool stopping_ = false;
  std::future<void> loop_;  // run() on the compute thread
};

}  // namespace jagged::server
