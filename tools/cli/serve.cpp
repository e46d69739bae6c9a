// jagged serve: the OpenAI-compatible HTTP server (jagged/server.h). The port is bound first (GET /health says 503
// while the model loads), then the model loads; SIGTERM or SIGINT drains running requests (bounded by
// --shutdown-grace, then cancelled) and the process exits 0.
#include <csignal>
#include <iostream>
#include <pthread.h>
#include <thread>

#include "commands.h"
#include "common.h"
#include "jagged/server.h"
#include "jagged/threads.h"

namespace jagged::cli {
namespace {

void serve_command(ServerOptions options, int threads) {
  // SIGTERM/SIGINT are taken by a thread of ours (sigwait), so every other thread must block them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  set_num_threads(threads);

  Server server(options);
  server.start();
  std::cout << "jagged serve: listening on http://" << options.host << ":" << server.port() << std::endl;
  std::thread([&server, signals] {
    int signal = 0;
    sigwait(&signals, &signal);
    std::cerr << "jagged serve: " << (signal == SIGTERM ? "SIGTERM" : "SIGINT") << ", shutting down\n";
    server.shutdown();
  }).detach();
  server.load();
  std::cout << "jagged serve: model loaded" << std::endl;
  server.wait();
  std::cerr << "jagged serve: stopped\n";
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto options = std::make_shared<ServerOptions>();
  auto threads = std::make_shared<int>(0);
  options->engine.max_running = 64;
  CLI::App* command = app.add_subcommand(
      "serve", "an OpenAI-compatible HTTP server: /v1/completions and /v1/chat/completions (streamed or not), "
               "/v1/embeddings (encoders), "
               "/v1/models, /tokenize, /detokenize, /health, /metrics");
  command->add_option("--model,-m", options->model, "model: llama2.c .bin, Hugging Face dir, .gguf, or synthetic:NAME")
      ->required();
  command->add_option("--tokenizer", options->tokenizer, "tokenizer file (default: the model's own)");
  command->add_option("--chat-template", options->chat_template,
                      "Jinja chat template file (default: the model's own, from GGUF or tokenizer_config.json)");
  add_dtype_option(*command, options->dtype);
  command->add_option("--model-name", options->model_name, "the model id clients use (default: the file's stem)");
  command->add_option("--host", options->host, "address to listen on")->capture_default_str();
  command->add_option("--port", options->port, "port (0: any free port, printed on stdout)")->capture_default_str();
  command->add_option("--max-batch-tokens", options->engine.max_batch_tokens, "tokens per engine step")
      ->capture_default_str();
  command->add_option("--kv-cache-tokens", options->engine.kv_cache_tokens, "KV cache capacity in tokens (0: automatic)")
      ->capture_default_str();
  add_kv_dtype_option(*command, options->engine.kv_dtype);
  command->add_option("--max-concurrent", options->engine.max_running, "requests decoding at once")
      ->check(CLI::Range(int64_t{1}, int64_t{4096}))
      ->capture_default_str();
  command->add_option("--max-queue", options->max_queue, "requests waiting beyond --max-concurrent before 429")
      ->check(CLI::Range(int64_t{0}, int64_t{4096}))
      ->capture_default_str();
  command->add_option("--api-key", options->api_key, "require 'Authorization: Bearer KEY' (not on /health, /metrics)");
  command->add_option("--max-body-bytes", options->max_body_bytes, "larger request bodies get 413")->capture_default_str();
  command->add_option("--shutdown-grace", options->shutdown_grace_s,
                      "seconds running requests may finish after SIGTERM before they are cancelled")
      ->capture_default_str();
  command->add_option("--embedding-batch-tokens", options->embedding_batch_tokens,
                      "encoders: tokens per nested batch of waiting inputs")
      ->capture_default_str();
  command->add_option("--step-delay-ms", options->step_delay_ms,
                      "sleep after each engine step (tests, demos: requests observable mid-flight)");
  command->add_option("--threads", *threads, "threads (0: all cores)")->capture_default_str();
  command->callback([options, threads] { serve_command(*options, *threads); });
}

}  // namespace jagged::cli
