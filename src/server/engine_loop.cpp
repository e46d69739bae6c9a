#include "server/engine_loop.h"

#include <iostream>

#include "jagged/error.h"

namespace jagged::server {

std::vector<RequestEvent> RequestStream::wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  ready_.wait_for(lock, timeout, [&] { return !events_.empty(); });
  std::vector<RequestEvent> events(std::make_move_iterator(events_.begin()), std::make_move_iterator(events_.end()));
  events_.clear();
  return events;
}

bool RequestStream::finished() const {
  std::lock_guard lock(mutex_);
  return finished_;
}

RequestResult RequestStream::result() const {
  std::lock_guard lock(mutex_);
  return result_;
}

std::string RequestStream::error() const {
  std::lock_guard lock(mutex_);
  return error_;
}

void RequestStream::push(RequestEvent event, std::optional<RequestResult> result) {
  {
    std::lock_guard lock(mutex_);
    if (result) {
      result_ = std::move(*result);
      finished_ = true;
    }
    events_.push_back(std::move(event));
  }
  ready_.notify_all();
}

void RequestStream::fail(const std::string& message) {
  RequestEvent event;
  event.id = id_;
  event.finish = FinishReason::cancelled;
  {
    std::lock_guard lock(mutex_);
    error_ = message;
    result_.id = id_;
    result_.finish = FinishReason::cancelled;
    finished_ = true;
    events_.push_back(std::move(event));
  }
  ready_.notify_all();
}

EngineLoop::EngineLoop(Engine& engine, Metrics& metrics, int64_t max_in_flight, int step_delay_ms,
                       core::ComputeThread& compute)
    : engine_(engine), metrics_(metrics), max_in_flight_(max_in_flight), step_delay_ms_(step_delay_ms),
      loop_(compute.post([this] { run(); })) {}

EngineLoop::~EngineLoop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cancel_all();
  wake_.notify_all();
  loop_.wait();
}

std::shared_ptr<RequestStream> EngineLoop::submit(GenerationRequest request) {
  const auto prompt_tokens = static_cast<int64_t>(request.prompt.size());
  std::shared_ptr<RequestStream> stream;
  {
    // Under the lock, so the loop cannot route an event of this id before its stream is registered.
    std::lock_guard lock(mutex_);
    if (stopping_) throw QueueFull("the server is shutting down");
    if (static_cast<int64_t>(streams_.size()) >= max_in_flight_) {
      throw QueueFull(concat("the server has ", streams_.size(), " requests in flight (at most ", max_in_flight_,
                             ": --max-concurrent + --max-queue); retry later"));
    }
    const RequestId id = engine_.add_request(std::move(request));
    stream = std::make_shared<RequestStream>(id, prompt_tokens);
    streams_[id] = stream;
  }
  wake_.notify_all();
  return stream;
}

void EngineLoop::cancel(RequestId id) {
  engine_.cancel(id);
  wake_.notify_all();
}

void EngineLoop::cancel_all() {
  std::lock_guard lock(mutex_);
  for (const auto& entry : streams_) engine_.cancel(entry.first);
  wake_.notify_all();
}

int64_t EngineLoop::in_flight() const {
  std::lock_guard lock(mutex_);
  return static_cast<int64_t>(streams_.size());
}

bool EngineLoop::wait_idle(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  return idle_.wait_until(lock, deadline, [&] { return streams_.empty(); });
}

void EngineLoop::run() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || engine_.has_work(); });
      if (stopping_ && !engine_.has_work()) break;
    }
    std::vector<RequestEvent> events;
    try {
      events = engine_.step();
    } catch (const std::exception& error) {
      // The engine refused a step (e.g. non-finite logits): end every request with the message rather than die.
      std::cerr << "jagged serve: engine step failed: " << error.what() << "\n";
      std::lock_guard lock(mutex_);
      for (auto& [id, stream] : streams_) {
        engine_.cancel(id);
        stream->fail(concat("the engine failed: ", error.what()));
        metrics_.count_finished(FinishReason::cancelled);
      }
      streams_.clear();
      idle_.notify_all();
      continue;
    }
    metrics_.observe_step(engine_.stats().last_step_tokens);
    dispatch(events);
    if (step_delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(step_delay_ms_));
  }
}

void EngineLoop::dispatch(std::vector<RequestEvent>& events) {
  const auto now = RequestStream::Clock::now();
  std::lock_guard lock(mutex_);
  for (RequestEvent& event : events) {
    const auto found = streams_.find(event.id);
    if (found == streams_.end()) continue;  // already failed
    RequestStream& stream = *found->second;
    if (!event.tokens.empty()) {
      const auto since = now - (stream.has_token ? stream.last_token : stream.submitted);
      const double seconds = std::chrono::duration<double>(since).count();
      if (stream.has_token) metrics_.observe_inter_token_latency(seconds);
      else metrics_.observe_time_to_first_token(seconds);
      stream.has_token = true;
      stream.last_token = now;
    }
    std::optional<RequestResult> result;
    if (event.finish != FinishReason::none) {
      result = engine_.result(event.id);
      metrics_.count_finished(event.finish);
    }
    const bool finished = result.has_value();
    stream.push(std::move(event), std::move(result));
    if (finished) streams_.erase(found);
  }
  if (streams_.empty()) idle_.notify_all();
}

}  // namespace jagged::server
