// jagged serve: an OpenAI-compatible HTTP server over the engine (jagged/engine.h) for decoders and over the nested
// encoder batch (jagged/bert.h) for BERT-family models. HTTP handler threads parse requests and wait on per-request
// event queues; one scheduler thread steps the engine and hands each step's events to the requests they belong to.
// Responses are those the same request gets alone (the engine is batch invariant), streamed or not.
//
// Endpoints: POST /v1/completions, POST /v1/chat/completions (the model's Jinja chat template), POST /v1/embeddings (encoders), GET /v1/models, POST /tokenize,
// POST /detokenize, GET /health (503 while the model loads), GET /metrics (Prometheus text). Errors are OpenAI JSON
// {"error": {"message", "type", "param", "code"}} with 400/401/404/413/429/503.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "jagged/engine.h"

namespace jagged {

struct ServerOptions {
  std::string model;               // a model spec as open_llama_model / open_bert_model take it
  std::string tokenizer;           // tokenizer file; empty: the model's own
  std::string chat_template;       // Jinja chat template file; empty: the model's own (GGUF, tokenizer_config.json)
  std::string dtype = "f32";       // weights in memory
  std::string model_name;          // the id /v1/models lists and requests may name; empty: the model spec
  std::string host = "127.0.0.1";
  int port = 8080;                 // 0: any free port (port() says which)
  EngineOptions engine;            // max_batch_tokens, kv_cache_tokens, max_running (requests decoding at once)
  int64_t max_queue = 64;          // requests accepted beyond engine.max_running before 429
  std::string api_key;             // when set, every route but /health and /metrics wants "Bearer KEY"
  size_t max_body_bytes = 1 << 20;  // larger bodies get 413
  double shutdown_grace_s = 5.0;   // on shutdown, running requests may finish this long before being cancelled
  int64_t embedding_batch_tokens = 4096;  // encoder: tokens of all waiting inputs per nested batch
  int step_delay_ms = 0;           // tests and demos: sleep after each engine step (requests observable mid-flight)
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();  // shuts down if still running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port and starts answering (/health says 503 until load() returns). Error when the port cannot be
  // bound.
  void start();
  int port() const;  // the bound port (after start)
  // Loads the model and tokenizer and starts the scheduler thread; after it, /health says 200. Errors propagate.
  void load();
  // Stops taking requests (503), lets running ones finish for up to shutdown_grace_s, cancels the rest, closes
  // the listening socket and joins every thread. Thread-safe and idempotent; returns when done.
  void shutdown();
  // Blocks until shutdown() has completed (called from another thread, e.g. on SIGTERM).
  void wait();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace jagged
