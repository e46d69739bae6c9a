// jagged serve's library (jagged/server.h) driven over HTTP on loopback by a real client: OpenAI shapes, equality
// with `jagged generate` token for token, 32 concurrent clients each bit-identical to the same request alone,
// every error status, a client vanishing mid-stream (its blocks freed), loading (503) and shutdown.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/wait.h>

#include <future>
#include <nlohmann/json.hpp>

#include "jagged/server.h"
#include "server/http_client.h"
#include "testing/cli.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

using nlohmann::json;
using testing::HttpAnswer;
using testing::post_json;

std::filesystem::path stories_dir() { return testing::shared_dir() / "models" / "stories260K"; }
std::string stories_model() { return (stories_dir() / "stories260K.bin").string(); }

ServerOptions stories_options() {
  ServerOptions options;
  options.model = stories_model();
  options.port = 0;
  options.engine.max_running = 64;
  options.engine.max_batch_tokens = 64;
  options.max_queue = 16;
  options.max_body_bytes = 64 * 1024;
  options.shutdown_grace_s = 0.5;
  return options;
}

// One server on stories260K for the suite (loading once keeps the suite fast).
class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(stories_dir() / "stories260K.bin")) return;
    server_ = new Server(stories_options());
    server_->start();
    server_->load();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override { JAGGED_REQUIRE_PATH(stories_dir() / "stories260K.bin"); }
  static int port() { return server_->port(); }
  static std::string metrics() { return testing::http_request(port(), "GET", "/metrics").body; }

  static Server* server_;
};
Server* ServerTest::server_ = nullptr;

json completion(const std::string& prompt, int max_tokens, uint64_t seed, double temperature) {
  return {{"model", "stories260K"}, {"prompt", prompt},  {"max_tokens", max_tokens}, {"seed", seed},
          {"temperature", temperature}, {"top_k", 40}, {"logprobs", 2}, {"return_token_ids", true}};
}

// What a client keeps of a completion: text, token ids, each token's logprob and top logprobs, finish reason.
struct Outcome {
  std::string text;
  json token_ids = json::array();
  json token_logprobs = json::array();
  json top_logprobs = json::array();
  std::string finish;
  json usage;
  bool operator==(const Outcome&) const = default;
};

Outcome outcome_of(const HttpAnswer& answer, bool streamed) {
  Outcome outcome;
  EXPECT_EQ(answer.status, 200) << answer.body;
  if (answer.status != 200) return outcome;
  if (!streamed) {
    const json body = answer.json();
    const json& choice = body["choices"][0];
    outcome.text = choice["text"];
    outcome.token_ids = choice["token_ids"];
    outcome.token_logprobs = choice["logprobs"]["token_logprobs"];
    outcome.top_logprobs = choice["logprobs"]["top_logprobs"];
    outcome.finish = choice["finish_reason"];
    outcome.usage = body["usage"];
    return outcome;
  }
  const testing::SseStream stream = testing::parse_sse(answer.body);
  EXPECT_TRUE(stream.done) << answer.body;
  for (const json& chunk : stream.chunks) {
    if (chunk.contains("usage") && !chunk["usage"].is_null()) outcome.usage = chunk["usage"];
    if (chunk["choices"].empty()) continue;
    const json& choice = chunk["choices"][0];
    outcome.text += choice["text"].get<std::string>();
    for (const auto& id : choice["token_ids"]) outcome.token_ids.push_back(id);
    if (!choice["logprobs"].is_null()) {
      for (const auto& value : choice["logprobs"]["token_logprobs"]) outcome.token_logprobs.push_back(value);
      for (const auto& value : choice["logprobs"]["top_logprobs"]) outcome.top_logprobs.push_back(value);
    }
    if (!choice["finish_reason"].is_null()) outcome.finish = choice["finish_reason"];
  }
  return outcome;
}

Outcome run_completion(int port, json body, bool stream) {
  if (stream) {
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
  }
  return outcome_of(post_json(port, "/v1/completions", body), stream);
}

TEST_F(ServerTest, HealthModelsTokenizeDetokenize) {
  EXPECT_EQ(testing::http_request(port(), "GET", "/health").status, 200);
  const HttpAnswer models = testing::http_request(port(), "GET", "/v1/models");
  ASSERT_EQ(models.status, 200);
  EXPECT_EQ(models.json()["data"][0]["id"], "stories260K");
  EXPECT_EQ(models.json()["data"][0]["max_model_len"], 512);
  const HttpAnswer tokens = post_json(port(), "/tokenize", {{"prompt", "Once upon a time"}});
  ASSERT_EQ(tokens.status, 200) << tokens.body;
  const json ids = tokens.json()["tokens"];
  EXPECT_EQ(ids[0], 1);  // BOS
  EXPECT_EQ(tokens.json()["count"], ids.size());
  const HttpAnswer text = post_json(port(), "/detokenize", {{"tokens", ids}});
  ASSERT_EQ(text.status, 200) << text.body;
  EXPECT_EQ(text.json()["prompt"], "Once upon a time");
}

TEST_F(ServerTest, GreedyCompletionIsLlama2csTextWithUsage) {
  const std::string expected = testing::read_text(stories_dir() / "expected_greedy_200.txt");
  const HttpAnswer answer = post_json(port(), "/v1/completions", {{"prompt", ""}, {"max_tokens", 200}, {"temperature", 0}});
  ASSERT_EQ(answer.status, 200) << answer.body;
  const json body = answer.json();
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_EQ(body["model"], "stories260K");
  EXPECT_EQ(body["choices"][0]["text"], expected);
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(body["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(body["usage"], json({{"prompt_tokens", 1}, {"completion_tokens", 200}, {"total_tokens", 201}}));
}

TEST_F(ServerTest, StreamedEqualsWholeAndEndsWithUsageAndDone) {
  const json request = completion("The cat", 48, 5, 0.9);
  const Outcome whole = run_completion(port(), request, false);
  const Outcome streamed = run_completion(port(), request, true);
  EXPECT_EQ(streamed, whole);
  EXPECT_EQ(whole.token_ids.size(), whole.usage["completion_tokens"].get<size_t>());
  EXPECT_FALSE(whole.text.empty());
  // Without include_usage no chunk carries usage; the stream still ends with [DONE].
  json plain = request;
  plain["stream"] = true;
  const testing::SseStream stream = testing::parse_sse(post_json(port(), "/v1/completions", plain).body);
  EXPECT_TRUE(stream.done);
  ASSERT_FALSE(stream.chunks.empty());
  for (const json& chunk : stream.chunks) EXPECT_FALSE(chunk.contains("usage"));
  EXPECT_FALSE(stream.chunks.back()["choices"][0]["finish_reason"].is_null());
}

TEST_F(ServerTest, StopStringEndsTheCompletion) {
  const std::string expected = testing::read_text(stories_dir() / "expected_greedy_200.txt");
  const size_t stop_at = expected.find("Lily");
  ASSERT_NE(stop_at, std::string::npos);
  const HttpAnswer answer =
      post_json(port(), "/v1/completions", {{"prompt", ""}, {"max_tokens", 200}, {"temperature", 0}, {"stop", {"Lily"}}});
  ASSERT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(answer.json()["choices"][0]["text"], expected.substr(0, stop_at));
  EXPECT_EQ(answer.json()["choices"][0]["finish_reason"], "stop");
}

// The same request through `jagged generate` (one prompt: seed as given) and through the server: same tokens, same
// text, same log-probabilities (bit for bit: both print floats that read back exactly).
TEST_F(ServerTest, CompletionEqualsGenerateCliTokenForToken) {
  const auto json_path = std::filesystem::temp_directory_path() / concat("jagged_serve_generate_", ::getpid(), ".json");
  const std::string command =
      concat(JAGGED_BINARY_DIR, "/jagged generate --model ", stories_model(), " -p 'Once upon a time' -n 40 ",
             "--temp 0.8 --top-k 40 --top-p 0.9 --min-p 0.01 --repetition-penalty 1.1 --presence-penalty 0.2 ",
             "--frequency-penalty 0.1 --seed 42 --logprobs 2 --threads 1 --json ", json_path.string(), " > /dev/null");
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  const json cli = json::parse(testing::read_text(json_path))["requests"][0];
  std::filesystem::remove(json_path);
  json request = completion("Once upon a time", 40, 42, 0.8);
  request.update({{"top_p", 0.9}, {"min_p", 0.01}, {"repetition_penalty", 1.1}, {"presence_penalty", 0.2},
                  {"frequency_penalty", 0.1}});
  for (const bool stream : {false, true}) {
    const Outcome served = run_completion(port(), request, stream);
    EXPECT_EQ(served.token_ids, cli["tokens"]) << "stream " << stream;
    EXPECT_EQ(served.text, cli["text"]) << "stream " << stream;
    ASSERT_EQ(served.token_logprobs.size(), cli["logprobs"].size());
    for (size_t t = 0; t < served.token_logprobs.size(); ++t) {
      EXPECT_EQ(served.token_logprobs[t].get<float>(), cli["logprobs"][t]["logprob"].get<float>()) << t;
      EXPECT_EQ(served.top_logprobs[t].size(), 2u);
    }
    EXPECT_EQ(served.finish, cli["finish_reason"] == "stop" ? "stop" : "length");
    EXPECT_EQ(served.usage["prompt_tokens"], cli["prompt_tokens"]);
  }
}

// 32 clients at once, different prompts, seeds, lengths and sampling, half streamed: each gets exactly (text, ids,
// log-probabilities as floats) what the same request gets alone.
TEST_F(ServerTest, ConcurrentClientsGetWhatTheyGetAlone) {
  const std::vector<std::string> prompts{"Once upon a time", "The cat", "", "Lily and Tom went to the park",
                                         "One day, a little girl", "The sun was"};
  std::vector<json> requests;
  for (int i = 0; i < 32; ++i) {
    json request = completion(prompts[i % prompts.size()], 8 + (i * 7) % 57, 1000 + i, i % 4 == 0 ? 0.0 : 0.7 + 0.05 * (i % 5));
    if (i % 3 == 0) request["stop"] = {"."};
    if (i % 5 == 0) request["ignore_eos"] = true;
    requests.push_back(request);
  }
  std::vector<Outcome> alone;
  for (int i = 0; i < 32; ++i) alone.push_back(run_completion(port(), requests[i], i % 2 == 0));
  const double steps_before = testing::metric(metrics(), "jagged_engine_steps_total");
  std::vector<std::future<Outcome>> together;
  for (int i = 0; i < 32; ++i) {
    together.push_back(std::async(std::launch::async, [&, i] { return run_completion(port(), requests[i], i % 2 == 0); }));
  }
  for (int i = 0; i < 32; ++i) {
    ASSERT_EQ(together[i].wait_for(std::chrono::seconds(60)), std::future_status::ready);
    EXPECT_EQ(together[i].get(), alone[i]) << "request " << i << ": " << requests[i].dump();
  }
  // They shared steps: far fewer steps than the requests' tokens run one by one.
  int64_t tokens = 0;
  for (const Outcome& outcome : alone) tokens += outcome.usage["completion_tokens"].get<int64_t>();
  EXPECT_LT(testing::metric(metrics(), "jagged_engine_steps_total") - steps_before, tokens / 2);
}

TEST_F(ServerTest, BadRequestsGetOpenAIErrors) {
  const auto expect_error = [&](const HttpAnswer& answer, int status, const std::string& param,
                                const std::string& fragment) {
    EXPECT_EQ(answer.status, status) << answer.body;
    const json body = answer.json();
    ASSERT_TRUE(body.contains("error")) << answer.body;
    EXPECT_EQ(body["error"]["type"], status == 404 || status == 400 || status == 413 ? "invalid_request_error" : body["error"]["type"]);
    if (!param.empty()) {
      EXPECT_EQ(body["error"]["param"], param) << answer.body;
    }
    EXPECT_NE(body["error"]["message"].get<std::string>().find(fragment), std::string::npos) << answer.body;
  };
  expect_error(testing::http_request(port(), "POST", "/v1/completions", "{not json"), 400, "", "not valid JSON");
  expect_error(post_json(port(), "/v1/completions", {{"prompt", "a"}, {"temperature", -1}}), 400, "temperature", "temperature");
  expect_error(post_json(port(), "/v1/completions", {{"prompt", "a"}, {"temperature", "hot"}}), 400, "temperature", "number");
  expect_error(post_json(port(), "/v1/completions", {{"prompt", "a"}, {"n", 2}}), 400, "n", "n = 1");
  expect_error(post_json(port(), "/v1/completions", {{"prompt", {"a", "b"}}}), 400, "prompt", "one prompt");
  expect_error(post_json(port(), "/v1/completions", {{"max_tokens", 3}}), 400, "prompt", "required");
  expect_error(post_json(port(), "/v1/completions", {{"prompt", {1, 99999}}}), 400, "prompt", "99999");
  expect_error(post_json(port(), "/v1/completions", {{"prompt", "a"}, {"stream_options", {{"include_usage", true}}}}),
               400, "stream_options", "stream");
  expect_error(post_json(port(), "/v1/completions", {{"prompt", "a"}, {"max_tokens", 0}}), 400, "max_tokens", "max_tokens");
  expect_error(post_json(port(), "/v1/completions", {{"prompt", "a"}, {"max_tokens", 600}}), 400, "max_tokens", "context");
  std::string long_prompt;
  for (int i = 0; i < 600; ++i) long_prompt += "cat ";
  expect_error(post_json(port(), "/v1/completions", {{"prompt", long_prompt}}), 400, "prompt", "context");
  expect_error(post_json(port(), "/v1/completions", {{"prompt", "a"}, {"model", "gpt-4"}}), 404, "model", "gpt-4");
  expect_error(post_json(port(), "/v1/embeddings", {{"input", "a"}}), 400, "", "decoder");
  expect_error(post_json(port(), "/detokenize", {{"tokens", {-1}}}), 400, "tokens", "-1");
  expect_error(testing::http_request(port(), "GET", "/v1/nothing"), 404, "", "no route");
  expect_error(testing::http_request(port(), "POST", "/v1/completions", std::string(70 * 1024, ' ')), 413, "", "larger");
  EXPECT_NE(metrics().find("jagged_http_errors_total{status=\"413\"} 1"), std::string::npos);
  // The server still answers after all of them.
  EXPECT_EQ(post_json(port(), "/v1/completions", {{"prompt", "a"}, {"max_tokens", 2}}).status, 200);
}

double cancelled_count(int port) {
  return testing::metric(testing::http_request(port, "GET", "/metrics").body,
                         "jagged_requests_finished_total{reason=\"cancelled\"}");
}

// After a client went away: nothing in flight or running (within 20 s), its KV blocks free again, one more
// request finished as cancelled.
void expect_cancelled_and_freed(int port, double cancelled_before) {
  std::string after;
  EXPECT_TRUE(testing::eventually([&] {
    after = testing::http_request(port, "GET", "/metrics").body;
    return testing::metric(after, "jagged_requests_in_flight") == 0;
  }, 20.0)) << after;
  EXPECT_EQ(testing::metric(after, "jagged_kv_blocks_used"), 0) << after;
  EXPECT_EQ(testing::metric(after, "jagged_requests_running"), 0) << after;
  EXPECT_EQ(testing::metric(after, "jagged_requests_finished_total{reason=\"cancelled\"}"), cancelled_before + 1)
      << after;
}

// A client that goes away mid-stream: its request is cancelled and its KV blocks are free again.
TEST_F(ServerTest, ClientGoneMidStreamFreesItsBlocks) {
  const double cancelled_before = cancelled_count(port());
  // 500 tokens one step at a time: far longer than the client stays.
  ASSERT_TRUE(testing::start_stream_and_vanish(
      port(), {{"prompt", "Once upon a time"}, {"max_tokens", 500}, {"ignore_eos", true}, {"stream", true}}));
  expect_cancelled_and_freed(port(), cancelled_before);
}

TEST_F(ServerTest, MetricsExposeTheEngine) {
  ASSERT_EQ(post_json(port(), "/v1/completions", {{"prompt", "The cat"}, {"max_tokens", 4}}).status, 200);
  const std::string text = metrics();
  for (const char* name : {"jagged_requests_running", "jagged_requests_waiting", "jagged_kv_blocks_used",
                           "jagged_kv_blocks_free", "jagged_prompt_tokens_total", "jagged_generation_tokens_total",
                           "jagged_batch_tokens_count", "jagged_time_to_first_token_seconds_count",
                           "jagged_inter_token_latency_seconds_count"}) {
    EXPECT_GE(testing::metric(text, name), 0) << name << "\n" << text;
  }
  EXPECT_GT(testing::metric(text, "jagged_kv_blocks_free"), 0);
  EXPECT_GT(testing::metric(text, "jagged_time_to_first_token_seconds_count"), 0);
  EXPECT_GT(testing::metric(text, "jagged_inter_token_latency_seconds_count"), 0);
  EXPECT_NE(text.find("jagged_batch_tokens_bucket{le=\"+Inf\"}"), std::string::npos);
}

// Its own server: the port answers before the model is loaded (503), an API key is enforced, and a full queue
// refuses with 429; shutdown cancels what still runs and ends the streams.
TEST(ServerLifecycle, LoadingKeyQueueAndShutdown) {
  JAGGED_REQUIRE_PATH(stories_dir() / "stories260K.bin");
  ServerOptions options = stories_options();
  options.api_key = "sekret";
  options.engine.max_running = 1;
  options.max_queue = 0;
  options.step_delay_ms = 20;  // 500 tokens take ~10 s: the first request is surely running when the second comes
  Server server(options);
  server.start();
  const int port = server.port();
  EXPECT_EQ(testing::http_request(port, "GET", "/health").status, 503);
  const json small = {{"prompt", "a"}, {"max_tokens", 2}};
  EXPECT_EQ(post_json(port, "/v1/completions", small, "sekret").status, 503);
  server.load();
  EXPECT_EQ(testing::http_request(port, "GET", "/health").status, 200);
  const HttpAnswer no_key = post_json(port, "/v1/completions", small);
  EXPECT_EQ(no_key.status, 401);
  EXPECT_EQ(no_key.json()["error"]["type"], "authentication_error");
  EXPECT_EQ(post_json(port, "/v1/completions", small, "wrong").status, 401);
  EXPECT_EQ(testing::http_request(port, "GET", "/metrics").status, 200);  // open without the key

  const json long_request = {{"prompt", "a"}, {"max_tokens", 500}, {"ignore_eos", true}, {"stream", true}};
  auto streaming = std::async(std::launch::async, [&] { return post_json(port, "/v1/completions", long_request, "sekret"); });
  ASSERT_TRUE(testing::eventually([&] {
    return testing::metric(testing::http_request(port, "GET", "/metrics").body, "jagged_requests_in_flight") == 1;
  }, 10.0));
  const HttpAnswer full = post_json(port, "/v1/completions", small, "sekret");
  EXPECT_EQ(full.status, 429) << full.body;
  EXPECT_EQ(full.json()["error"]["type"], "rate_limit_error");

  const auto start = std::chrono::steady_clock::now();
  server.shutdown();  // grace 0.5 s, then the running request is cancelled
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  ASSERT_EQ(streaming.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  const testing::SseStream stream = testing::parse_sse(streaming.get().body);
  EXPECT_TRUE(stream.done);
  ASSERT_FALSE(stream.chunks.empty());
  EXPECT_EQ(stream.chunks.back()["choices"][0]["finish_reason"], "cancelled");
  EXPECT_EQ(testing::http_request(port, "GET", "/health").status, -1);  // no longer listening
}

// A client that goes away while waiting for a whole (not streamed) answer: the request is cancelled (it would
// otherwise end by length, 500 tokens at 20 ms a step), and its blocks are free again.
TEST(ServerLifecycle, ClientGoneBeforeAWholeAnswerCancelsIt) {
  JAGGED_REQUIRE_PATH(stories_dir() / "stories260K.bin");
  ServerOptions options = stories_options();
  options.step_delay_ms = 20;
  Server server(options);
  server.start();
  server.load();
  const int port = server.port();
  const double cancelled_before = cancelled_count(port);
  const int sock = testing::send_and_keep_open(
      port, "/v1/completions", {{"prompt", "Once upon a time"}, {"max_tokens", 500}, {"ignore_eos", true}});
  ASSERT_GE(sock, 0);
  ASSERT_TRUE(testing::eventually([&] {
    return testing::metric(testing::http_request(port, "GET", "/metrics").body, "jagged_requests_running") == 1;
  }, 10.0));
  ::close(sock);
  expect_cancelled_and_freed(port, cancelled_before);
  server.shutdown();
}

// The `jagged serve` process: prints its port, serves, and exits 0 on SIGTERM.
TEST(ServeCommand, ServesAndExitsZeroOnSigterm) {
  JAGGED_REQUIRE_PATH(stories_dir() / "stories260K.bin");
  const std::string binary = concat(JAGGED_BINARY_DIR, "/jagged");
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::close(out[0]);
    const std::string model = stories_model();
    execl(binary.c_str(), "jagged", "serve", "--model", model.c_str(), "--port", "0", "--threads", "1",
          "--shutdown-grace", "1", static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(out[1]);
  // "jagged serve: listening on http://127.0.0.1:PORT", then "jagged serve: model loaded" (bounded read).
  std::string printed;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (printed.find("model loaded") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd poll_fd{out[0], POLLIN, 0};
    if (::poll(&poll_fd, 1, 200) <= 0) continue;
    char buffer[256];
    const ssize_t got = ::read(out[0], buffer, sizeof(buffer));
    if (got <= 0) break;
    printed.append(buffer, static_cast<size_t>(got));
  }
  ::close(out[0]);
  const size_t at = printed.find("127.0.0.1:");
  int port = -1;
  if (at != std::string::npos) port = std::stoi(printed.substr(at + 10));
  EXPECT_GT(port, 0) << printed;
  if (port > 0) {
    const HttpAnswer answer = post_json(port, "/v1/completions", {{"prompt", ""}, {"max_tokens", 200}, {"temperature", 0}});
    EXPECT_EQ(answer.status, 200);
    EXPECT_EQ(answer.json()["choices"][0]["text"], testing::read_text(stories_dir() / "expected_greedy_200.txt"));
  }
  ::kill(pid, SIGTERM);
  int status = 0;
  const bool exited = testing::eventually([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, 20.0);
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  ASSERT_TRUE(exited) << "jagged serve did not exit within 20 s of SIGTERM";
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace jagged
