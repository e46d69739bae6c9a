// The HTTP layer of jagged serve (cpp-httplib: a thread per connection from a pool; all model work is in the
// scheduler thread, so handler threads only parse, wait and write). Routes, authentication, loading/draining
// states, server-sent events and the OpenAI error shape live here; request semantics in completions.cpp, the
// scheduler thread in engine_loop.cpp, encoder batching in embeddings.cpp.
#include "jagged/server.h"

#include <httplib.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>

#include <atomic>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <utility>

#include "core/compute_thread.h"
#include "jagged/error.h"
#include "jagged/model_spec.h"
#include "jagged/threads.h"
#include "server/api_error.h"
#include "server/chat_template.h"
#include "server/completions.h"
#include "server/embeddings.h"
#include "server/engine_loop.h"
#include "server/metrics.h"

namespace jagged {
namespace {

using nlohmann::json;
using server::ApiError;
using Clock = std::chrono::steady_clock;

std::string dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_json(httplib::Response& response, int status, const json& body) {
  response.status = status;
  response.set_content(dump(body), "application/json");
}

json parse_body(const httplib::Request& request) {
  json body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) throw ApiError(400, "the request body is not valid JSON");
  if (!body.is_object()) throw ApiError(400, "the request body must be a JSON object");
  return body;
}

std::string default_model_name(const std::string& spec) {
  if (is_synthetic_spec(spec)) return spec;
  std::filesystem::path path(spec);
  if (path.filename().empty()) path = path.parent_path();
  return path.stem().string();
}

// cpp-httplib 0.11 listens with a backlog of 5: a burst of clients connecting at once overflows it and waits for
// SYN retransmission (a second or more of time to first token). Listening again on the bound socket raises it.
class HttpServer : public httplib::Server {
 public:
  void raise_listen_backlog(int backlog) { ::listen(svr_sock_, backlog); }
};

// The address and port of a socket's local or peer end.
std::pair<std::string, int> endpoint(int fd, bool peer) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  auto* raw = reinterpret_cast<sockaddr*>(&address);
  if ((peer ? ::getpeername(fd, raw, &length) : ::getsockname(fd, raw, &length)) != 0) return {"", -1};
  char text[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address);
    ::inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
    return {text, ntohs(v4->sin_port)};
  }
  if (address.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address);
    ::inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
    return {text, ntohs(v6->sin6_port)};
  }
  return {"", -1};
}

// The socket of a request's connection: the one of this process whose peer is the request's remote end and whose
// local port is the server's (cpp-httplib 0.11 gives handlers no access to it). -1 if none matches. The
// connection stays open, and so its descriptor ours, while the handler runs.
int connection_socket(const httplib::Request& request, int server_port) {
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", error)) {
    int fd = -1;
    try {
      fd = std::stoi(entry.path().filename().string());
    } catch (const std::exception&) {
      continue;
    }
    if (endpoint(fd, true) == std::pair<std::string, int>(request.remote_addr, request.remote_port) &&
        endpoint(fd, false).second == server_port) {
      return fd;
    }
  }
  return -1;
}

// Whether the client on `fd` has closed or reset its connection: a peek that reads end of file or an error. (A
// byte waiting is a pipelined request: still there. A client that shuts down only its sending side before reading
// the answer reads as gone; HTTP clients keep both sides open.)
bool client_gone(int fd) {
  if (fd < 0) return false;
  char byte = 0;
  const ssize_t got = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

}  // namespace

struct Server::Impl {
  explicit Impl(ServerOptions options) : options(std::move(options)) {}

  ServerOptions options;
  HttpServer http;
  std::thread listen_thread;
  int bound_port = 0;
  server::Metrics metrics;

  std::atomic<bool> ready{false};
  std::atomic<bool> draining{false};
  std::atomic<int64_t> open_responses{0};  // responses being produced (a streaming one until its last write)

  std::string model_name;
  std::string family;
  // Loads the model and then runs the engine loop or the embedding batcher: all OpenMP work on one thread.
  // Declared before what runs on it, so that it outlives them.
  std::unique_ptr<core::ComputeThread> compute;
  std::optional<LlamaModel> llama;
  std::optional<BertModel> bert;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<server::EngineLoop> loop;
  std::unique_ptr<server::EmbeddingBatcher> embedder;
  std::unique_ptr<server::ChatTemplate> chat_template;
  server::CompletionContext completion_context;

  std::mutex shutdown_mutex;
  std::condition_variable shutdown_done;
  bool shutdown_started = false;
  bool stopped = false;

  // Counts a response as open while it lives (shutdown waits for open responses before closing connections).
  struct OpenResponse {
    explicit OpenResponse(std::atomic<int64_t>& count) : count(count) { ++count; }
    ~OpenResponse() { --count; }
    OpenResponse(const OpenResponse&) = delete;
    OpenResponse& operator=(const OpenResponse&) = delete;
    std::atomic<int64_t>& count;
  };

  void load();  // on the compute thread
  void routes();
  httplib::Server::HandlerResponse gate(const httplib::Request& request, httplib::Response& response);
  template <typename Handler>
  httplib::Server::Handler api(const std::string& route, Handler handler);
  void completions(const httplib::Request& request, httplib::Response& response, bool chat);
  void stream_completion(const server::CompletionRequest& parsed, std::shared_ptr<server::RequestStream> stream,
                         httplib::Response& response);
  void embeddings(const httplib::Request& request, httplib::Response& response);
  void tokenize(const httplib::Request& request, httplib::Response& response);
  void detokenize(const httplib::Request& request, httplib::Response& response);
  void models(httplib::Response& response);
  const Tokenizer& require_tokenizer() const;
};

// Before routing: authentication, then the loading and shutting-down states. /health and /metrics stay open.
httplib::Server::HandlerResponse Server::Impl::gate(const httplib::Request& request, httplib::Response& response) {
  const bool open_route = request.path == "/health" || request.path == "/metrics";
  if (open_route) return httplib::Server::HandlerResponse::Unhandled;
  std::optional<ApiError> error;
  if (!options.api_key.empty() && request.get_header_value("Authorization") != "Bearer " + options.api_key) {
    error.emplace(401, "missing or wrong API key: send the header 'Authorization: Bearer KEY'", "", "invalid_api_key");
  } else if (draining) {
    error.emplace(503, "the server is shutting down");
  } else if (!ready) {
    error.emplace(503, "the model is still loading; retry when GET /health answers 200");
  }
  if (!error) return httplib::Server::HandlerResponse::Unhandled;
  metrics.count_rejected(error->status());
  send_json(response, error->status(), error->json());
  return httplib::Server::HandlerResponse::Handled;
}

// Wraps a route: counts it, and turns every error into OpenAI's JSON (ApiError as itself, InvalidArgument as 400,
// QueueFull as 429, anything else as 500).
template <typename Handler>
httplib::Server::Handler Server::Impl::api(const std::string& route, Handler handler) {
  return [this, route, handler](const httplib::Request& request, httplib::Response& response) {
    metrics.count_request(route);
    std::optional<ApiError> error;
    try {
      handler(request, response);
    } catch (const ApiError& caught) {
      error = caught;
    } catch (const server::QueueFull& caught) {
      error.emplace(draining ? 503 : 429, caught.what());
    } catch (const InvalidArgument& caught) {
      error.emplace(400, caught.what());
    } catch (const std::exception& caught) {
      error.emplace(500, concat("internal error: ", caught.what()));
    }
    if (!error) return;
    metrics.count_rejected(error->status());
    send_json(response, error->status(), error->json());
  };
}

void Server::Impl::routes() {
  http.set_pre_routing_handler([this](const auto& request, auto& response) { return gate(request, response); });
  // httplib's own refusals (no route, body too large, bad request line) get OpenAI's JSON too.
  http.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& request,
                                                                      httplib::Response& response) {
    if (!response.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string message = concat("HTTP ", response.status);
    if (response.status == 404) message = concat("no route ", request.method, " ", request.path);
    if (response.status == 413) message = concat("the request body is larger than ", options.max_body_bytes, " bytes");
    metrics.count_rejected(response.status);
    send_json(response, response.status, ApiError(response.status, message).json());
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.Get("/health", [this](const httplib::Request&, httplib::Response& response) {
    if (ready && !draining) return send_json(response, 200, {{"status", "ok"}});
    send_json(response, 503, ApiError(503, ready ? "shutting down" : "loading the model").json());
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
    std::optional<EngineStats> stats;
    if (ready && engine) stats = engine->stats();
    const int64_t in_flight = ready && loop ? loop->in_flight() : 0;
    response.set_content(metrics.render(stats ? &*stats : nullptr, in_flight), "text/plain; version=0.0.4");
  });
  http.Get("/v1/models", api("/v1/models", [this](const auto&, auto& response) { models(response); }));
  http.Post("/v1/completions", api("/v1/completions", [this](const auto& request, auto& response) {
              completions(request, response, /*chat=*/false);
            }));
  http.Post("/v1/chat/completions", api("/v1/chat/completions", [this](const auto& request, auto& response) {
              completions(request, response, /*chat=*/true);
            }));
  http.Post("/v1/embeddings",
            api("/v1/embeddings", [this](const auto& request, auto& response) { embeddings(request, response); }));
  http.Post("/tokenize", api("/tokenize", [this](const auto& request, auto& response) { tokenize(request, response); }));
  http.Post("/detokenize",
            api("/detokenize", [this](const auto& request, auto& response) { detokenize(request, response); }));
}

const Tokenizer& Server::Impl::require_tokenizer() const {
  if (tokenizer == nullptr) throw ApiError(400, "the model has no tokenizer (start the server with --tokenizer)");
  return *tokenizer;
}

void Server::Impl::models(httplib::Response& response) {
  json model = {{"id", model_name}, {"object", "model"}, {"created", 0}, {"owned_by", "jagged"}};
  if (llama) model["max_model_len"] = llama->config().context_length;
  send_json(response, 200, {{"object", "list"}, {"data", json::array({model})}});
}

void Server::Impl::tokenize(const httplib::Request& request, httplib::Response& response) {
  const json body = parse_body(request);
  if (!body.contains("prompt") || !body["prompt"].is_string()) throw ApiError(400, "'prompt' must be a string", "prompt");
  bool add_special = true;
  if (body.contains("add_special_tokens")) {
    if (!body["add_special_tokens"].is_boolean()) throw ApiError(400, "'add_special_tokens' must be true or false", "add_special_tokens");
    add_special = body["add_special_tokens"].get<bool>();
  }
  const std::vector<int32_t> ids = require_tokenizer().encode(body["prompt"].get<std::string>(), add_special);
  json answer = {{"tokens", ids}, {"count", ids.size()}};
  if (llama) answer["max_model_len"] = llama->config().context_length;
  send_json(response, 200, answer);
}

void Server::Impl::detokenize(const httplib::Request& request, httplib::Response& response) {
  const json body = parse_body(request);
  const Tokenizer& vocabulary = require_tokenizer();
  if (!body.contains("tokens") || !body["tokens"].is_array()) throw ApiError(400, "'tokens' must be a list of token ids", "tokens");
  std::vector<int32_t> ids;
  for (const json& id : body["tokens"]) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= vocabulary.vocab_size()) {
      throw ApiError(400, concat("token id ", id.dump(), " is not in [0, ", vocabulary.vocab_size(), ")"), "tokens");
    }
    ids.push_back(id.get<int32_t>());
  }
  send_json(response, 200, {{"prompt", vocabulary.decode(ids)}});
}

void Server::Impl::completions(const httplib::Request& request, httplib::Response& response, bool chat) {
  if (!loop) throw ApiError(400, concat("the model '", model_name, "' is an encoder: use POST /v1/embeddings"));
  const json body = parse_body(request);
  const server::CompletionRequest parsed = chat ? server::parse_chat_request(body, completion_context)
                                                : server::parse_completion_request(body, completion_context);
  std::shared_ptr<server::RequestStream> stream = loop->submit(parsed.generation);
  if (parsed.stream) return stream_completion(parsed, std::move(stream), response);

  OpenResponse open(open_responses);
  server::ChoiceBuilder choice(tokenizer.get(), parsed.generation.prompt.back(), parsed.generation.logprobs, chat);
  FinishReason finish = FinishReason::none;
  const int client_socket = connection_socket(request, bound_port);
  bool cancelled = false;
  while (finish == FinishReason::none) {  // ends: every request finishes (max_tokens, context, or cancelled)
    const std::vector<RequestEvent> events = stream->wait(std::chrono::milliseconds(200));
    for (const RequestEvent& event : events) {
      choice.add(event);
      if (event.finish != FinishReason::none) finish = event.finish;
    }
    // A client gone before its whole answer: cancelled, its blocks freed at the engine's next step.
    if (!cancelled && client_gone(client_socket)) {
      loop->cancel(stream->id());
      cancelled = true;
    }
  }
  if (!stream->error().empty()) throw ApiError(500, stream->error());
  json body_choice = server::choice_json(parsed, choice.text(), choice.logprobs(), finish, false, false);
  if (parsed.return_token_ids) body_choice["token_ids"] = choice.token_ids();
  json answer = server::completion_object(concat(chat ? "chatcmpl-" : "cmpl-", stream->id()), std::time(nullptr),
                                          model_name, body_choice, chat ? "chat.completion" : "text_completion");
  answer["usage"] = server::usage_json(stream->prompt_tokens(), static_cast<int64_t>(choice.token_ids().size()));
  send_json(response, 200, answer);
}

// Server-sent events: a chunk per step that produced text or tokens, the finishing chunk, the usage chunk when
// asked, then [DONE]. A client gone (a failed write, or the socket no longer writable while waiting) cancels the
// request; the engine frees its blocks at its next step.
void Server::Impl::stream_completion(const server::CompletionRequest& parsed,
                                     std::shared_ptr<server::RequestStream> stream, httplib::Response& response) {
  struct State {
    State(server::CompletionRequest request, std::shared_ptr<server::RequestStream> stream,
          server::ChoiceBuilder choice, std::atomic<int64_t>& open)
        : request(std::move(request)), stream(std::move(stream)), choice(std::move(choice)), open(open) {}
    server::CompletionRequest request;
    std::shared_ptr<server::RequestStream> stream;
    server::ChoiceBuilder choice;
    OpenResponse open;
    bool first = true;
    bool done = false;
  };
  auto state = std::make_shared<State>(
      parsed, stream,
      server::ChoiceBuilder(tokenizer.get(), parsed.generation.prompt.back(), parsed.generation.logprobs, parsed.chat),
      open_responses);
  const std::string id = concat(parsed.chat ? "chatcmpl-" : "cmpl-", stream->id());
  const int64_t created = std::time(nullptr);
  const char* object = parsed.chat ? "chat.completion.chunk" : "text_completion";
  response.set_header("Cache-Control", "no-cache");
  response.set_chunked_content_provider(
      "text/event-stream",
      [this, state, id, created, object](size_t, httplib::DataSink& sink) {
        if (state->done) {
          sink.done();
          return true;
        }
        const std::vector<RequestEvent> events = state->stream->wait(std::chrono::milliseconds(100));
        if (events.empty()) {
          if (sink.is_writable()) return true;
          loop->cancel(state->stream->id());
          return false;
        }
        const server::CompletionRequest& request = state->request;
        std::string out;
        for (const RequestEvent& event : events) {
          json logprobs = state->choice.add(event);
          const bool finishing = event.finish != FinishReason::none;
          if (event.text.empty() && event.tokens.empty() && !finishing) continue;
          json choice = server::choice_json(request, event.text, logprobs, event.finish, true, state->first);
          state->first = false;
          if (request.return_token_ids) choice["token_ids"] = event.tokens;
          json chunk = server::completion_object(id, created, model_name, choice, object);
          if (request.include_usage) chunk["usage"] = nullptr;
          out += "data: " + dump(chunk) + "\n\n";
          if (!finishing) continue;
          if (request.include_usage) {
            json usage = server::completion_object(id, created, model_name, nullptr, object);
            usage["choices"] = json::array();
            usage["usage"] = server::usage_json(state->stream->prompt_tokens(),
                                                static_cast<int64_t>(state->choice.token_ids().size()));
            out += "data: " + dump(usage) + "\n\n";
          }
          out += "data: [DONE]\n\n";
          state->done = true;
        }
        if (!out.empty() && !sink.write(out.data(), out.size())) {
          loop->cancel(state->stream->id());
          return false;
        }
        if (state->done) sink.done();
        return true;
      },
      [this, state](bool success) {
        if (!success && !state->done) loop->cancel(state->stream->id());
      });
}

void Server::Impl::embeddings(const httplib::Request& request, httplib::Response& response) {
  if (!embedder) throw ApiError(400, concat("the model '", model_name, "' is a decoder: embeddings need a BERT-family encoder"));
  OpenResponse open(open_responses);
  send_json(response, 200, embedder->handle(parse_body(request), model_name));
}

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Server::~Server() {
  bool started = false;
  {
    std::lock_guard lock(impl_->shutdown_mutex);
    started = impl_->listen_thread.joinable() || impl_->shutdown_started;
  }
  if (started) shutdown();
}

void Server::start() {
  Impl& impl = *impl_;
  // cpp-httplib 0.11 writes to sockets without MSG_NOSIGNAL: a client gone must not kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  const auto threads = static_cast<size_t>(impl.options.engine.max_running + impl.options.max_queue + 8);
  impl.http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  impl.http.set_payload_max_length(impl.options.max_body_bytes);
  impl.http.set_keep_alive_timeout(2);
  impl.routes();
  if (impl.options.port == 0) {
    impl.bound_port = impl.http.bind_to_any_port(impl.options.host);
  } else {
    impl.bound_port = impl.http.bind_to_port(impl.options.host, impl.options.port) ? impl.options.port : -1;
  }
  if (impl.bound_port <= 0) {
    throw Error(concat("cannot listen on ", impl.options.host, ":", impl.options.port,
                       " (in use, or not an address of this machine)"));
  }
  impl.http.raise_listen_backlog(1024);
  impl.listen_thread = std::thread([&impl] { impl.http.listen_after_bind(); });
}

int Server::port() const { return impl_->bound_port; }

void Server::load() {
  Impl& impl = *impl_;
  impl.compute = std::make_unique<core::ComputeThread>(num_threads());  // the caller's thread count
  impl.compute->run([&impl] { impl.load(); });
  impl.ready = true;
}

void Server::Impl::load() {
  model_name = options.model_name.empty() ? default_model_name(options.model) : options.model_name;
  family = model_family(options.model);
  if (family == "bert") {
    bert.emplace(open_bert_model(options.model, options.dtype));
    // An encoder without a tokenizer still serves token-id inputs.
    const int64_t vocab_size = bert->config().vocab_size;
    tokenizer = options.tokenizer.empty() ? find_model_tokenizer(options.model, vocab_size)
                                          : open_model_tokenizer(options.model, options.tokenizer, vocab_size);
    embedder = std::make_unique<server::EmbeddingBatcher>(*bert, tokenizer.get(), options.embedding_batch_tokens,
                                                          metrics, *compute);
  } else {
    llama.emplace(open_llama_model(options.model, options.dtype));
    const LlamaConfig& config = llama->config();
    tokenizer = open_model_tokenizer(options.model, options.tokenizer, config.vocab_size);
    engine = std::make_unique<Engine>(*llama, tokenizer.get(), options.engine);
    loop = std::make_unique<server::EngineLoop>(*engine, metrics, options.engine.max_running + options.max_queue,
                                                options.step_delay_ms, *compute);
    server::CompletionContext& context = completion_context;
    context.tokenizer = tokenizer.get();
    context.context_length = config.context_length;
    context.vocab_size = config.vocab_size;
    context.bos_id = config.bos_id;
    context.model_name = model_name;
    // The chat template: a problem with it is reported to chat requests (400) and leaves completions working.
    try {
      const std::string source = server::find_chat_template(options.model, options.chat_template);
      if (!source.empty() && tokenizer != nullptr) {
        const Tokenizer& vocabulary = *tokenizer;
        const auto piece = [&](int32_t id) { return id >= 0 ? vocabulary.piece(id) : std::string(); };
        chat_template =
            std::make_unique<server::ChatTemplate>(source, piece(vocabulary.bos_id()), piece(vocabulary.eos_id()));
        completion_context.chat_template = chat_template.get();
      }
    } catch (const InvalidArgument& error) {
      completion_context.chat_template_problem = error.what();
      std::cerr << "jagged serve: warning: " << error.what() << "\n";
    }
  }
}

void Server::shutdown() {
  Impl& impl = *impl_;
  {
    std::unique_lock lock(impl.shutdown_mutex);
    if (impl.shutdown_started) {
      impl.shutdown_done.wait(lock, [&] { return impl.stopped; });
      return;
    }
    impl.shutdown_started = true;
  }
  impl.draining = true;
  if (impl.loop) {
    const auto grace = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(impl.options.shutdown_grace_s));
    if (!impl.loop->wait_idle(Clock::now() + grace)) {
      impl.loop->cancel_all();
      impl.loop->wait_idle(Clock::now() + std::chrono::seconds(5));
    }
  }
  // Let handlers write their last chunks before connections close (bounded: each is one write away).
  for (int i = 0; i < 200 && impl.open_responses > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  impl.http.stop();
  if (impl.listen_thread.joinable()) impl.listen_thread.join();
  impl.loop.reset();
  impl.embedder.reset();
  {
    std::lock_guard lock(impl.shutdown_mutex);
    impl.stopped = true;
  }
  impl.shutdown_done.notify_all();
}

void Server::wait() {
  std::unique_lock lock(impl_->shutdown_mutex);
  impl_->shutdown_done.wait(lock, [&] { return impl_->stopped; });
}

}  // namespace jagged
