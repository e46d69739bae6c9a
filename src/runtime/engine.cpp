// The continuous-batching scheduler over the paged KV cache. Each step: drain new requests and cancellations,
// admit waiting requests while their prompts fit the cache, then fill the token budget with one decode token per
// running request first and prefill chunks after, run one cached forward, sample each sequence whose last token
// was in the step, and retire the finished ones (their blocks are free for the next step). When a sequence needs a
// block and none is free, the most recently admitted other request is preempted: its blocks are freed and it is
// recomputed later from its tokens (bit-identical, the forward being batch invariant).
#include "jagged/engine.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <exception>
#include <mutex>
#include <unordered_map>

#include "jagged/error.h"
#include "jagged/kv_cache.h"

namespace jagged {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kDefaultCacheBytes = int64_t{1} << 30;

int64_t cache_tokens(const LlamaConfig& config, const EngineOptions& options) {
  int64_t tokens = options.kv_cache_tokens;
  if (options.kv_cache_bytes > 0) {
    const int64_t by_bytes = options.kv_cache_bytes / KvCache::bytes_per_token(config, options.kv_dtype);
    tokens = tokens > 0 ? std::min(tokens, by_bytes) : by_bytes;
  }
  if (tokens <= 0 && options.kv_cache_tokens == 0 && options.kv_cache_bytes == 0) {
    const int64_t budget =
        std::max<int64_t>(config.context_length, kDefaultCacheBytes / KvCache::bytes_per_token(config, options.kv_dtype));
    tokens = std::min(options.max_running * config.context_length, budget);
  }
  if (tokens <= 0) throw InvalidArgument("engine: the KV cache budget holds no token (raise kv_cache_tokens or kv_cache_bytes)");
  return tokens;
}

// Length of the longest prefix of `bytes` that ends on a whole UTF-8 character.
size_t complete_utf8(const std::string& bytes) {
  size_t end = bytes.size();
  for (size_t back = 1; back <= 4 && back <= bytes.size(); ++back) {
    const auto byte = static_cast<unsigned char>(bytes[bytes.size() - back]);
    if ((byte & 0xC0) == 0x80) continue;  // continuation byte
    const size_t need = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1;
    if (need > back) end = bytes.size() - back;
    break;
  }
  return end;
}

}  // namespace

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::length: return "length";
    case FinishReason::stop: return "stop";
    case FinishReason::context: return "context";
    case FinishReason::cancelled: return "cancelled";
    case FinishReason::none: break;
  }
  return "";
}

struct Engine::Impl {
  struct Request {
    GenerationRequest params;
    Sampler sampler;
    std::vector<int32_t> tokens;   // prompt, then generated
    std::vector<int32_t> blocks;   // KV cache blocks, in order
    int64_t computed = 0;          // tokens whose keys are in the cache
    std::string pending;           // decoded bytes not yet emitted (partial characters, possible stop strings)
    Clock::time_point start;
    RequestResult result;
  };

  Impl(const LlamaModel& model, const Tokenizer* tokenizer, const EngineOptions& options)
      : model(model), tokenizer(tokenizer), options(options),
        cache(model.config(), cache_tokens(model.config(), options), options.kv_dtype),
        workspace(model.make_workspace(options.max_batch_tokens, std::min(options.max_batch_tokens, options.max_running))),
        layers(cache.layers()) {}

  const LlamaModel& model;
  const Tokenizer* tokenizer;
  EngineOptions options;
  KvCache cache;
  LlamaWorkspace workspace;
  std::vector<PagedKvLayer> layers;

  mutable std::mutex mutex;  // guards incoming, cancelled, next_id and the stats copy
  std::vector<std::pair<RequestId, Request>> incoming;
  std::vector<RequestId> cancelled;
  RequestId next_id = 1;
  EngineStats shared_stats;

  std::unordered_map<RequestId, Request> requests;  // every request not yet collected by result()
  std::deque<RequestId> waiting;
  std::vector<RequestId> running;  // in admission order
  EngineStats stats;

  // Step buffers (reused: steps allocate no tensors).
  std::vector<int32_t> token_ids, cu_seqlens, context_lengths, block_tables, block_offsets, logit_rows;
  std::vector<Request*> sampled;       // requests sampling this step, in logit-row order
  std::vector<int32_t> sampled_tokens;  // their tokens
  std::vector<RequestId> step_seqs;

  void release_blocks(Request& request) {
    for (const int32_t block : request.blocks) cache.release(block);
    request.blocks.clear();
    request.computed = 0;
  }

  void finish(RequestId id, Request& request, FinishReason reason, std::vector<RequestEvent>& events,
              RequestEvent* event) {
    request.result.finish = reason;
    release_blocks(request);
    running.erase(std::remove(running.begin(), running.end(), id), running.end());
    waiting.erase(std::remove(waiting.begin(), waiting.end(), id), waiting.end());
    if (reason != FinishReason::stop && !request.pending.empty()) {  // flush what was held back
      request.result.text += request.pending;
      if (event != nullptr) event->text += request.pending;
      request.pending.clear();
    }
    if (event != nullptr) {
      event->finish = reason;
    } else {
      RequestEvent done;
      done.id = id;
      done.finish = reason;
      events.push_back(std::move(done));
    }
  }

  bool ensure_blocks(Request& request, int64_t tokens) {
    // The tokens this request can reach: its blocks are placed to grow in one run up to them.
    const int64_t context = model.config().context_length;
    const int64_t remaining =
        std::min(context, request.params.max_tokens - static_cast<int64_t>(request.result.tokens.size()));
    const int64_t final_tokens =
        std::min<int64_t>(context, static_cast<int64_t>(request.tokens.size()) + remaining);
    while (static_cast<int64_t>(request.blocks.size()) < cache.blocks_for(tokens)) {
      const int32_t last = request.blocks.empty() ? -1 : request.blocks.back();
      const int64_t expected = cache.blocks_for(final_tokens) - static_cast<int64_t>(request.blocks.size());
      const int32_t block = cache.allocate(last, expected);
      if (block < 0) return false;
      request.blocks.push_back(block);
    }
    return true;
  }

  // Frees the most recently admitted running request other than `keep`; false when there is none.
  bool preempt_one(RequestId keep) {
    for (auto it = running.rbegin(); it != running.rend(); ++it) {
      if (*it == keep) continue;
      const RequestId victim = *it;
      Request& request = requests.at(victim);
      release_blocks(request);
      ++request.result.preemptions;
      ++stats.preemptions;
      running.erase(std::next(it).base());
      waiting.push_front(victim);
      return true;
    }
    return false;
  }

  void take_incoming(std::vector<RequestEvent>& events) {
    std::vector<std::pair<RequestId, Request>> added;
    std::vector<RequestId> cancels;
    {
      std::lock_guard lock(mutex);
      added.swap(incoming);
      cancels.swap(cancelled);
    }
    for (auto& [id, request] : added) {
      requests.emplace(id, std::move(request));
      waiting.push_back(id);
    }
    for (const RequestId id : cancels) {
      auto it = requests.find(id);
      if (it == requests.end() || it->second.result.finish != FinishReason::none) continue;
      finish(id, it->second, FinishReason::cancelled, events, nullptr);
    }
  }

  void admit() {
    while (!waiting.empty() && static_cast<int64_t>(running.size()) < options.max_running) {
      Request& request = requests.at(waiting.front());
      // Admit only when the whole recompute (prompt and tokens so far, plus the next) fits the free blocks now.
      if (cache.blocks_for(static_cast<int64_t>(request.tokens.size()) + 1) > cache.free_blocks()) break;
      running.push_back(waiting.front());
      waiting.pop_front();
    }
  }

  // Decode rows first, then prefill chunks, within the token budget.
  void build_batch() {
    token_ids.clear();
    cu_seqlens.assign(1, 0);
    context_lengths.clear();
    block_tables.clear();
    block_offsets.assign(1, 0);
    logit_rows.clear();
    step_seqs.clear();
    int64_t budget = options.max_batch_tokens;
    const int64_t chunk_limit = options.prefill_chunk_tokens > 0 ? options.prefill_chunk_tokens : options.max_batch_tokens;
    for (const bool decode_pass : {true, false}) {
      for (size_t i = 0; i < running.size() && budget > 0; ++i) {
        const RequestId id = running[i];
        Request& request = requests.at(id);
        const int64_t remaining = static_cast<int64_t>(request.tokens.size()) - request.computed;
        if ((remaining == 1) != decode_pass || remaining <= 0) continue;
        if (std::find(step_seqs.begin(), step_seqs.end(), id) != step_seqs.end()) continue;
        const int64_t chunk = std::min({remaining, budget, chunk_limit});
        bool fits = ensure_blocks(request, request.computed + chunk);
        while (!fits && preempt_one(id)) fits = ensure_blocks(request, request.computed + chunk);
        if (!fits) continue;
        // A preemption may have removed a sequence already in this step: rebuild from scratch.
        if (std::any_of(step_seqs.begin(), step_seqs.end(), [&](RequestId s) {
              return std::find(running.begin(), running.end(), s) == running.end();
            })) {
          return build_batch();
        }
        step_seqs.push_back(id);
        context_lengths.push_back(static_cast<int32_t>(request.computed));
        token_ids.insert(token_ids.end(), request.tokens.begin() + request.computed,
                         request.tokens.begin() + request.computed + chunk);
        cu_seqlens.push_back(static_cast<int32_t>(token_ids.size()));
        block_tables.insert(block_tables.end(), request.blocks.begin(), request.blocks.end());
        block_offsets.push_back(static_cast<int32_t>(block_tables.size()));
        if (request.computed + chunk == static_cast<int64_t>(request.tokens.size())) {
          logit_rows.push_back(static_cast<int32_t>(token_ids.size()) - 1);
        }
        budget -= chunk;
      }
    }
  }

  // Decodes the token; returns true when a stop string completed (the output then ends before it). Otherwise
  // emits what can no longer be part of a stop string or a partial character.
  bool emit_text(Request& request, int32_t token, RequestEvent& event) {
    if (tokenizer == nullptr) return false;
    const int32_t previous = request.tokens.size() >= 2 ? request.tokens[request.tokens.size() - 2] : -1;
    request.pending += tokenizer->decode_token(previous, token);
    if (!request.params.stop.empty() && match_stop(request, event)) return true;
    size_t hold = 0;
    for (const std::string& stop : request.params.stop) hold = std::max(hold, stop.size() - 1);
    const size_t ready = complete_utf8(request.pending);
    const size_t emit = ready > hold ? std::min(ready, request.pending.size() - std::min(hold, request.pending.size())) : 0;
    const size_t cut = std::min(emit, complete_utf8(request.pending.substr(0, emit)));
    event.text += request.pending.substr(0, cut);
    request.result.text += request.pending.substr(0, cut);
    request.pending.erase(0, cut);
    return false;
  }

  // A stop string in the text so far: truncate the output before it. True when found.
  bool match_stop(Request& request, RequestEvent& event) {
    const std::string all = request.result.text + request.pending;
    size_t best = std::string::npos;
    for (const std::string& stop : request.params.stop) {
      if (stop.empty()) continue;
      best = std::min(best, all.find(stop, request.result.text.size() > stop.size()
                                               ? request.result.text.size() - stop.size() : 0));
    }
    if (best == std::string::npos) return false;
    if (best >= request.result.text.size()) {
      const std::string add = all.substr(request.result.text.size(), best - request.result.text.size());
      event.text += add;
      request.result.text += add;
    }
    request.pending.clear();
    return true;
  }

  // Each sampled request draws its token from its own logit row with its own sampler and RNG, so the requests
  // can run on any threads in any order and draw exactly what they draw alone. An error (non-finite logits) is
  // rethrown here, after the parallel loop.
  void sample_rows(ConstMatrixView logits, int64_t vocab) {
    sampled_tokens.assign(sampled.size(), 0);
    std::vector<std::exception_ptr> errors(sampled.size());
    const int64_t count = static_cast<int64_t>(sampled.size());
#pragma omp parallel for schedule(dynamic, 1) if (count > 1)
    for (int64_t i = 0; i < count; ++i) {
      Request& request = *sampled[static_cast<size_t>(i)];
      try {
        const std::span<const float> row(logits.row(i), static_cast<size_t>(vocab));
        const std::span<const int32_t> prompt(request.tokens.data(), static_cast<size_t>(request.result.prompt_tokens));
        sampled_tokens[static_cast<size_t>(i)] = request.sampler.sample(row, prompt, request.result.tokens);
      } catch (...) {
        errors[static_cast<size_t>(i)] = std::current_exception();
      }
    }
    for (const std::exception_ptr& error : errors) {
      if (error) std::rethrow_exception(error);
    }
  }

  void sample_and_retire(ConstMatrixView logits, std::vector<RequestEvent>& events) {
    const LlamaConfig& config = model.config();
    const int64_t vocab = config.vocab_size;
    // The requests whose last computed row has logits: the step's logit rows, in order.
    sampled.clear();
    for (size_t s = 0; s < step_seqs.size(); ++s) {
      Request& request = requests.at(step_seqs[s]);
      request.computed += cu_seqlens[s + 1] - cu_seqlens[s];
      if (request.computed == static_cast<int64_t>(request.tokens.size())) sampled.push_back(&request);
    }
    sample_rows(logits, vocab);
    for (size_t i = 0; i < sampled.size(); ++i) {
      Request& request = *sampled[i];
      const RequestId id = request.result.id;
      const std::span<const float> row(logits.row(static_cast<int64_t>(i)), static_cast<size_t>(vocab));
      const int32_t token = sampled_tokens[i];
      request.tokens.push_back(token);
      request.result.tokens.push_back(token);
      request.result.token_times_s.push_back(std::chrono::duration<double>(Clock::now() - request.start).count());
      if (request.result.tokens.size() == 1) request.result.time_to_first_token_s = request.result.token_times_s.back();
      if (request.params.return_logits) request.result.logits.insert(request.result.logits.end(), row.begin(), row.end());
      ++stats.generated_tokens;

      RequestEvent event;
      event.id = id;
      event.tokens.push_back(token);
      if (request.params.logprobs >= 0) {
        event.logprobs.push_back(token_logprob(row, token));
        request.result.token_logprobs.push_back(event.logprobs.back().logprob);
        if (request.params.logprobs > 0) event.top_logprobs.push_back(top_logprobs(row, request.params.logprobs));
      }
      const bool is_eos = token == config.eos_id && !request.params.ignore_eos;
      const bool is_stop_token = std::find(request.params.stop_tokens.begin(), request.params.stop_tokens.end(),
                                           token) != request.params.stop_tokens.end();
      FinishReason reason = FinishReason::none;
      if (is_eos || is_stop_token) {
        reason = FinishReason::stop;
      } else {
        if (emit_text(request, token, event)) reason = FinishReason::stop;
      }
      if (reason == FinishReason::none) {
        if (static_cast<int64_t>(request.result.tokens.size()) >= request.params.max_tokens) {
          reason = FinishReason::length;
        } else if (static_cast<int64_t>(request.tokens.size()) >= config.context_length) {
          reason = FinishReason::context;
        }
      }
      if (reason != FinishReason::none) finish(id, request, reason, events, &event);
      events.push_back(std::move(event));
    }
  }

  std::vector<RequestEvent> step() {
    std::vector<RequestEvent> events;
    take_incoming(events);
    // Requests that ask for nothing end at once.
    for (auto it = waiting.begin(); it != waiting.end();) {
      Request& request = requests.at(*it);
      if (request.params.max_tokens == 0) {
        const RequestId id = *it;
        it = waiting.erase(it);
        finish(id, request, FinishReason::length, events, nullptr);
      } else {
        ++it;
      }
    }
    admit();
    build_batch();
    if (!step_seqs.empty()) {
      TokenBatch batch;
      batch.token_ids = token_ids;
      batch.kv = {cu_seqlens, context_lengths, block_tables, block_offsets, cache.num_blocks()};
      batch.logit_rows = logit_rows;
      const ConstMatrixView logits = model.forward(batch, layers, workspace, options.profile);
      for (size_t s = 0; s < step_seqs.size(); ++s) {
        const Request& request = requests.at(step_seqs[s]);
        if (request.computed < request.result.prompt_tokens) stats.prompt_tokens += cu_seqlens[s + 1] - cu_seqlens[s];
      }
      ++stats.steps;
      stats.last_step_tokens = static_cast<int64_t>(token_ids.size());
      StageTimer timer(options.profile, "sampling");
      sample_and_retire(logits, events);
    } else if (!waiting.empty() && running.empty()) {
      throw InvalidArgument("engine: a waiting request cannot be admitted into an empty KV cache");  // unreachable
    }
    publish_stats();
    return events;
  }

  void publish_stats() {
    stats.running = static_cast<int64_t>(running.size());
    stats.kv_blocks_total = cache.num_blocks();
    stats.kv_blocks_used = cache.used_blocks();
    stats.kv_block_tokens = cache.block_tokens();
    stats.kv_bytes = cache.bytes();
    std::lock_guard lock(mutex);
    stats.waiting = static_cast<int64_t>(waiting.size() + incoming.size());
    shared_stats = stats;
  }
};

Engine::Engine(const LlamaModel& model, const Tokenizer* tokenizer, const EngineOptions& options) {
  if (options.max_batch_tokens <= 0 || options.max_running <= 0 || options.prefill_chunk_tokens < 0 ||
      options.kv_cache_tokens < 0 || options.kv_cache_bytes < 0) {
    throw InvalidArgument(concat("engine: max_batch_tokens (", options.max_batch_tokens, ") and max_running (",
                                 options.max_running, ") must be positive; cache sizes and the chunk size >= 0"));
  }
  impl_ = std::make_unique<Impl>(model, tokenizer, options);
  impl_->publish_stats();
}

Engine::~Engine() = default;

RequestId Engine::add_request(GenerationRequest request) {
  const LlamaConfig& config = impl_->model.config();
  const int64_t prompt_tokens = static_cast<int64_t>(request.prompt.size());
  if (prompt_tokens == 0) throw InvalidArgument("request: the prompt has no tokens (start it with BOS)");
  for (const int32_t id : request.prompt) {
    if (id < 0 || id >= config.vocab_size) {
      throw InvalidArgument(concat("request: prompt token ", id, " is outside the vocabulary [0, ", config.vocab_size, ")"));
    }
  }
  if (prompt_tokens >= config.context_length) {
    throw InvalidArgument(concat("request: the prompt has ", prompt_tokens, " tokens; the model's context length is ",
                                 config.context_length, " and leaves no room for a new token"));
  }
  if (impl_->cache.blocks_for(prompt_tokens + 1) > impl_->cache.num_blocks()) {
    throw InvalidArgument(concat("request: the prompt has ", prompt_tokens, " tokens but the whole KV cache holds ",
                                 impl_->cache.num_blocks() * impl_->cache.block_tokens(), " (raise --kv-cache-tokens)"));
  }
  if (request.max_tokens < 0) throw InvalidArgument(concat("request: max_tokens must be >= 0, got ", request.max_tokens));
  if (!request.stop.empty() && impl_->tokenizer == nullptr) {
    throw InvalidArgument("request: stop strings need a tokenizer");
  }
  Impl::Request state{request, Sampler(request.sampling), request.prompt, {}, 0, {}, Clock::now(), {}};
  state.result.prompt_tokens = prompt_tokens;
  std::lock_guard lock(impl_->mutex);
  const RequestId id = impl_->next_id++;
  state.result.id = id;
  impl_->incoming.emplace_back(id, std::move(state));
  return id;
}

void Engine::cancel(RequestId id) {
  std::lock_guard lock(impl_->mutex);
  impl_->cancelled.push_back(id);
}

std::vector<RequestEvent> Engine::step() { return impl_->step(); }

bool Engine::has_work() const {
  std::lock_guard lock(impl_->mutex);
  return !impl_->incoming.empty() || impl_->shared_stats.running > 0 || impl_->shared_stats.waiting > 0 ||
         !impl_->cancelled.empty();
}

RequestResult Engine::result(RequestId id, bool release) {
  auto it = impl_->requests.find(id);
  if (it == impl_->requests.end()) throw InvalidArgument(concat("engine: no request ", id));
  RequestResult result = it->second.result;
  if (release && result.finish != FinishReason::none) impl_->requests.erase(it);
  return result;
}

EngineStats Engine::stats() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->shared_stats;
}

const LlamaModel& Engine::model() const { return impl_->model; }

std::vector<RequestResult> generate_all(Engine& engine, std::vector<GenerationRequest> requests) {
  std::vector<RequestId> ids;
  for (GenerationRequest& request : requests) ids.push_back(engine.add_request(std::move(request)));
  while (engine.has_work()) engine.step();
  std::vector<RequestResult> results;
  for (const RequestId id : ids) results.push_back(engine.result(id));
  return results;
}

}  // namespace jagged
