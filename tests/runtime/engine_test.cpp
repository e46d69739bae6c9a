// The generation engine on stories260K (a real trained model): the golden greedy text through the paged KV
// cache, and a request's tokens and logits bit-identical whatever shares its steps, when it arrives, how its
// prompt is chunked, whether it was preempted, and to a full recompute without the cache.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "jagged/engine.h"
#include "jagged/memory.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

std::filesystem::path model_dir() { return testing::shared_dir() / "models" / "stories260K"; }

struct Stories {
  LlamaModel model = load_llama_model(model_dir() / "stories260K.bin");
  std::unique_ptr<Tokenizer> tokenizer = load_tokenizer(model_dir() / "tok512.bin", model.config().vocab_size);
};

const std::vector<std::string>& prompts() {
  static const std::vector<std::string> texts{
      "Once upon a time", "The cat", "", "Lily and Tom went to the park to play", "One day", "The sun was",
      "Tim had a big red ball and", "She", "A little bird", "Mom said", "They ran", "The dog and the cat were friends",
      "He wanted", "In the garden", "Sue saw a", "Ben"};
  return texts;
}

GenerationRequest request_for(const Stories& s, size_t i, int64_t max_tokens, bool sampled) {
  GenerationRequest request;
  request.prompt = s.tokenizer->encode(prompts()[i], true);
  if (request.prompt.empty()) request.prompt.push_back(s.model.config().bos_id);
  request.max_tokens = max_tokens + static_cast<int64_t>(i % 5) * 7;  // ragged output lengths
  request.return_logits = true;
  if (sampled) {
    request.sampling.temperature = 0.9f;
    request.sampling.top_p = 0.95f;
    request.sampling.seed = 1000 + i;
  }
  return request;
}

std::vector<RequestResult> alone(const Stories& s, int64_t max_tokens, bool sampled, const EngineOptions& options = {}) {
  std::vector<RequestResult> results;
  for (size_t i = 0; i < prompts().size(); ++i) {
    Engine engine(s.model, s.tokenizer.get(), options);
    results.push_back(generate_all(engine, {request_for(s, i, max_tokens, sampled)})[0]);
  }
  return results;
}

void expect_same(const std::vector<RequestResult>& expected, const std::vector<RequestResult>& actual,
                 const char* what) {
  ASSERT_EQ(expected.size(), actual.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(expected[i].tokens, actual[i].tokens) << what << ", request " << i;
    ASSERT_EQ(expected[i].logits.size(), actual[i].logits.size()) << what << ", request " << i;
    EXPECT_EQ(0, std::memcmp(expected[i].logits.data(), actual[i].logits.data(), expected[i].logits.size() * 4))
        << what << ": logits differ in bits, request " << i;
    EXPECT_EQ(expected[i].finish, actual[i].finish) << what << ", request " << i;
  }
}

TEST(Engine, GreedyFromBosMatchesLlama2cThroughTheCache) {
  JAGGED_REQUIRE_PATH(model_dir() / "stories260K.bin");
  const Stories s;
  Engine engine(s.model, s.tokenizer.get());
  GenerationRequest request;
  request.prompt = {s.model.config().bos_id};
  request.max_tokens = 200;
  const RequestResult result = generate_all(engine, {request})[0];
  ASSERT_EQ(result.tokens.size(), 200u);
  std::ifstream in(model_dir() / "expected_greedy_200.txt", std::ios::binary);
  std::stringstream expected;
  expected << in.rdbuf();
  EXPECT_EQ(result.text, expected.str());
  EXPECT_EQ(result.finish, FinishReason::length);
  EXPECT_EQ(engine.stats().kv_blocks_used, 0);
}

TEST(Engine, CachedLogitsEqualFullRecompute) {
  JAGGED_REQUIRE_PATH(model_dir() / "stories260K.bin");
  const Stories s;
  GenerationRequest request = request_for(s, 3, 40, false);
  Engine engine(s.model, s.tokenizer.get());
  const RequestResult result = generate_all(engine, {request})[0];
  std::vector<int32_t> sequence = request.prompt;
  const int64_t vocab = s.model.config().vocab_size;
  for (size_t t = 0; t < result.tokens.size(); ++t) {
    const std::vector<int64_t> length{static_cast<int64_t>(sequence.size())};
    NestedTensor ids = NestedTensor::from_lengths(length, {}, DType::i32);
    std::copy(sequence.begin(), sequence.end(), ids.values().data<int32_t>());
    const Tensor logits = s.model.forward(ids, {BatchLayout::nested, /*last_token_logits=*/true, nullptr});
    ASSERT_EQ(0, std::memcmp(logits.data<float>(), result.logits.data() + t * vocab, vocab * sizeof(float)))
        << "token " << t << ": cached and recomputed logits differ";
    sequence.push_back(result.tokens[t]);
  }
}

TEST(Engine, BatchedGreedyAndSampledEqualAlone) {
  JAGGED_REQUIRE_PATH(model_dir() / "stories260K.bin");
  const Stories s;
  for (const bool sampled : {false, true}) {
    const std::vector<RequestResult> expected = alone(s, 20, sampled);
    std::vector<GenerationRequest> requests;
    for (size_t i = 0; i < prompts().size(); ++i) requests.push_back(request_for(s, i, 20, sampled));
    Engine engine(s.model, s.tokenizer.get());
    expect_same(expected, generate_all(engine, requests), sampled ? "sampled together" : "greedy together");
    EXPECT_EQ(engine.stats().kv_blocks_used, 0);
  }
}

TEST(Engine, ChunkedPrefillAndSmallBudgetsEqualAlone) {
  JAGGED_REQUIRE_PATH(model_dir() / "stories260K.bin");
  const Stories s;
  const std::vector<RequestResult> expected = alone(s, 16, false);
  for (const int64_t chunk : {1, 7, 64}) {
    EngineOptions options;
    options.prefill_chunk_tokens = chunk;
    options.max_batch_tokens = chunk == 1 ? 5 : 37;
    Engine engine(s.model, s.tokenizer.get(), options);
    std::vector<GenerationRequest> requests;
    for (size_t i = 0; i < prompts().size(); ++i) requests.push_back(request_for(s, i, 16, false));
    expect_same(expected, generate_all(engine, requests), "chunked prefill");
  }
}

TEST(Engine, ArrivalsCancellationAndPreemption) {
  JAGGED_REQUIRE_PATH(model_dir() / "stories260K.bin");
  const Stories s;
  const std::vector<RequestResult> expected = alone(s, 24, true);
  EngineOptions options;
  options.kv_cache_tokens = 4 * 64;  // a few blocks: long requests must preempt each other
  options.max_batch_tokens = 24;
  Engine engine(s.model, s.tokenizer.get(), options);
  std::vector<RequestId> ids;
  RequestId victim = -1;
  for (size_t i = 0; i < prompts().size(); ++i) {
    ids.push_back(engine.add_request(request_for(s, i, 24, true)));
    if (i == 5) victim = engine.add_request(request_for(s, 0, 200, false));
    for (int step = 0; step < 3; ++step) engine.step();  // requests arrive mid-run
    if (i == 9) engine.cancel(victim);
  }
  for (int guard = 0; engine.has_work() && guard < 100000; ++guard) engine.step();
  ASSERT_FALSE(engine.has_work());
  std::vector<RequestResult> results;
  for (const RequestId id : ids) results.push_back(engine.result(id));
  expect_same(expected, results, "arrivals + preemption");
  EXPECT_EQ(engine.result(victim).finish, FinishReason::cancelled);
  EXPECT_GT(engine.stats().preemptions, 0) << "the small cache should have forced a preemption";
  EXPECT_EQ(engine.stats().kv_blocks_used, 0) << "blocks leaked";
}

// A bf16 cache rounds each key and value once, when written; every read widens the same bits. So a request's
// tokens and logits still do not depend on its neighbours or on its prefill chunks, and the cache takes half the
// bytes; the logits move only by the rounding (close to the f32 cache's, not equal).
TEST(Engine, Bf16CacheIsBatchInvariantAndHalvesTheBytes) {
  JAGGED_REQUIRE_PATH(model_dir() / "stories260K.bin");
  const Stories s;
  EngineOptions bf16;
  bf16.kv_dtype = DType::bf16;
  bf16.kv_cache_tokens = 4096;
  const std::vector<RequestResult> expected = alone(s, 16, true, bf16);
  for (const int64_t chunk : {0, 7}) {
    EngineOptions options = bf16;
    options.prefill_chunk_tokens = chunk;
    if (chunk != 0) options.max_batch_tokens = 37;
    Engine engine(s.model, s.tokenizer.get(), options);
    std::vector<GenerationRequest> requests;
    for (size_t i = 0; i < prompts().size(); ++i) requests.push_back(request_for(s, i, 16, true));
    expect_same(expected, generate_all(engine, requests), chunk == 0 ? "bf16 cache, together" : "bf16 cache, chunked");
    EXPECT_EQ(engine.stats().kv_blocks_used, 0);
  }
  for (const int64_t tokens : {int64_t{4096}, int64_t{0}}) {  // sized in tokens, and by the default byte budget
    EngineOptions other = bf16;
    other.kv_dtype = DType::q8_0;
    other.kv_cache_tokens = tokens;
    EXPECT_THROW(Engine(s.model, s.tokenizer.get(), other), InvalidArgument) << "a KV cache of q8_0";
  }
  EngineOptions f32 = bf16;
  f32.kv_dtype = DType::f32;
  Engine f32_engine(s.model, s.tokenizer.get(), f32);
  Engine bf16_engine(s.model, s.tokenizer.get(), bf16);
  EXPECT_EQ(bf16_engine.stats().kv_bytes * 2, f32_engine.stats().kv_bytes);
  const RequestResult reference = generate_all(f32_engine, {request_for(s, 3, 1, false)})[0];
  const RequestResult rounded = generate_all(bf16_engine, {request_for(s, 3, 1, false)})[0];
  ASSERT_EQ(reference.logits.size(), rounded.logits.size());
  float largest = 0.0f, scale = 0.0f;
  for (size_t i = 0; i < reference.logits.size(); ++i) {
    largest = std::max(largest, std::abs(reference.logits[i] - rounded.logits[i]));
    scale = std::max(scale, std::abs(reference.logits[i]));
  }
  EXPECT_GT(largest, 0.0f) << "a bf16 cache that changes no logit is not rounding";
  EXPECT_LT(largest, 0.02f * scale) << "largest logit " << scale;
}

TEST(Engine, DecodeStepAllocatesNoTensor) {
  JAGGED_REQUIRE_PATH(model_dir() / "stories260K.bin");
  const Stories s;
  Engine engine(s.model, s.tokenizer.get());
  for (size_t i = 0; i < 4; ++i) engine.add_request(request_for(s, i, 50, false));
  for (int step = 0; step < 3; ++step) engine.step();  // prefill, then decode
  const int64_t before = memory_stats().allocations;
  for (int step = 0; step < 5; ++step) engine.step();
  EXPECT_EQ(memory_stats().allocations, before);
}

TEST(Engine, BadRequestsFailAtOnce) {
  JAGGED_REQUIRE_PATH(model_dir() / "stories260K.bin");
  const Stories s;
  EngineOptions options;
  options.kv_cache_tokens = 64;
  Engine engine(s.model, s.tokenizer.get(), options);
  GenerationRequest request;
  EXPECT_THROW(engine.add_request(request), InvalidArgument);  // empty prompt
  request.prompt = std::vector<int32_t>(100, 5);
  EXPECT_THROW(engine.add_request(request), InvalidArgument);  // cannot fit the whole cache
  request.prompt = std::vector<int32_t>(s.model.config().context_length, 5);
  EXPECT_THROW(engine.add_request(request), InvalidArgument);  // no room in the context
  request.prompt = {1, 100000};
  EXPECT_THROW(engine.add_request(request), InvalidArgument);  // id out of range
  request.prompt = {1};
  request.sampling.top_p = 2.0f;
  EXPECT_THROW(engine.add_request(request), InvalidArgument);
}

TEST(Engine, StopStringsAndContext) {
  JAGGED_REQUIRE_PATH(model_dir() / "stories260K.bin");
  const Stories s;
  Engine engine(s.model, s.tokenizer.get());
  GenerationRequest request;
  request.prompt = {s.model.config().bos_id};
  request.max_tokens = 200;
  const RequestResult full = generate_all(engine, {request})[0];
  const std::string stop = full.text.substr(40, 6);
  request.stop = {stop};
  const RequestResult stopped = generate_all(engine, {request})[0];
  EXPECT_EQ(stopped.finish, FinishReason::stop);
  EXPECT_EQ(stopped.text, full.text.substr(0, full.text.find(stop)));
  request.stop.clear();
  request.max_tokens = 100000;
  request.ignore_eos = true;
  const RequestResult capped = generate_all(engine, {request})[0];
  EXPECT_EQ(capped.finish, FinishReason::context);
  EXPECT_EQ(static_cast<int64_t>(capped.tokens.size()) + 1, s.model.config().context_length);
}

}  // namespace
}  // namespace jagged
