// POST /v1/embeddings on the bert-tiny fixture (token-id inputs; it has no vocabulary): the embeddings match the
// PyTorch reference, and an input's embedding is bit-identical alone and among 100 concurrent others, which the
// batcher packs into shared nested batches.
#include <gtest/gtest.h>

#include <future>
#include <random>

#include "jagged/server.h"
#include "server/http_client.h"
#include "testing/files.h"

namespace jagged {
namespace {

using nlohmann::json;
using testing::post_json;

const std::filesystem::path kFixture = std::filesystem::path(JAGGED_SOURCE_DIR) / "tests" / "fixtures" / "bert-tiny";

class EmbeddingsServer : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.model = kFixture.string();
    options.port = 0;
    options.embedding_batch_tokens = 512;
    server_ = std::make_unique<Server>(options);
    server_->start();
    server_->load();
  }
  int port() const { return server_->port(); }
  std::unique_ptr<Server> server_;
};

std::vector<float> floats(const json& values) { return values.get<std::vector<float>>(); }

TEST_F(EmbeddingsServer, MatchesTheReferenceAndHasOpenAIShape) {
  const json reference = json::parse(testing::read_text(kFixture / "reference.json"));
  const json sequences = reference["sequences"];
  const testing::HttpAnswer answer = post_json(port(), "/v1/embeddings", {{"input", sequences}, {"model", "bert-tiny"}});
  ASSERT_EQ(answer.status, 200) << answer.body;
  const json body = answer.json();
  EXPECT_EQ(body["object"], "list");
  ASSERT_EQ(body["data"].size(), sequences.size());
  int64_t tokens = 0;
  for (size_t i = 0; i < sequences.size(); ++i) {
    tokens += static_cast<int64_t>(sequences[i].size());
    EXPECT_EQ(body["data"][i]["index"], i);
    EXPECT_EQ(body["data"][i]["object"], "embedding");
    const std::vector<float> got = floats(body["data"][i]["embedding"]);
    bool single_segment = true;  // the API has no token types: compare the sequences of segment 0 only
    for (const auto& type : reference["token_type_ids"][i]) single_segment = single_segment && type == 0;
    if (!single_segment) continue;
    const std::vector<float> expected = floats(reference["mean_normalized"][i]);
    ASSERT_EQ(got.size(), expected.size());
    for (size_t d = 0; d < got.size(); ++d) EXPECT_NEAR(got[d], expected[d], 1e-5) << i << " " << d;
  }
  EXPECT_EQ(body["usage"]["prompt_tokens"], tokens);
  // One input (a single list of ids) is one embedding.
  const testing::HttpAnswer one = post_json(port(), "/v1/embeddings", {{"input", sequences[0]}});
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(one.json()["data"].size(), 1u);
  EXPECT_EQ(one.json()["data"][0]["embedding"], body["data"][0]["embedding"]);
}

TEST_F(EmbeddingsServer, AnInputAloneEqualsItAmongAHundredOthers) {
  std::mt19937 rng(7);
  std::vector<json> inputs;
  for (int i = 0; i < 101; ++i) {
    const int length = i == 1 ? 1 : 1 + static_cast<int>(rng() % 64);  // lengths 1..64 (the context)
    json ids = json::array();
    for (int t = 0; t < length; ++t) ids.push_back(static_cast<int>(rng() % 200));
    inputs.push_back(ids);
  }
  const testing::HttpAnswer alone = post_json(port(), "/v1/embeddings", {{"input", inputs[0]}});
  ASSERT_EQ(alone.status, 200) << alone.body;
  const json expected = alone.json()["data"][0]["embedding"];
  const double batches_before = testing::metric(testing::http_request(port(), "GET", "/metrics").body,
                                                "jagged_embedding_batches_total");
  // 101 concurrent requests: input 0 and the 100 others, one each.
  std::vector<std::future<testing::HttpAnswer>> answers;
  for (const json& ids : inputs) {
    answers.push_back(std::async(std::launch::async, [&, ids] { return post_json(port(), "/v1/embeddings", {{"input", ids}}); }));
  }
  std::vector<json> got;
  for (auto& answer : answers) {
    ASSERT_EQ(answer.wait_for(std::chrono::seconds(60)), std::future_status::ready);
    const testing::HttpAnswer result = answer.get();
    ASSERT_EQ(result.status, 200) << result.body;
    got.push_back(result.json()["data"][0]["embedding"]);
  }
  EXPECT_EQ(floats(got[0]), floats(expected));  // bit-identical (exact float equality)
  // And all 101 in one request: the same bits as each of them served concurrently.
  const testing::HttpAnswer together = post_json(port(), "/v1/embeddings", {{"input", inputs}});
  ASSERT_EQ(together.status, 200);
  for (size_t i = 0; i < inputs.size(); ++i) EXPECT_EQ(floats(together.json()["data"][i]["embedding"]), floats(got[i])) << i;
  const std::string metrics = testing::http_request(port(), "GET", "/metrics").body;
  EXPECT_LT(testing::metric(metrics, "jagged_embedding_batches_total") - batches_before, 101 + 1)
      << "the concurrent inputs never shared a batch\n" << metrics;
}

TEST_F(EmbeddingsServer, BadInputsAndDecoderRoutes) {
  EXPECT_EQ(post_json(port(), "/v1/embeddings", {{"input", {1, 500}}}).status, 400);   // id out of range
  EXPECT_EQ(post_json(port(), "/v1/embeddings", {{"input", "text"}}).status, 400);     // no tokenizer
  EXPECT_EQ(post_json(port(), "/v1/embeddings", {{"input", json::array()}}).status, 400);
  json too_long = json::array();
  for (int t = 0; t < 65; ++t) too_long.push_back(1);
  const testing::HttpAnswer long_answer = post_json(port(), "/v1/embeddings", {{"input", too_long}});
  EXPECT_EQ(long_answer.status, 400);
  EXPECT_EQ(long_answer.json()["error"]["code"], "context_length_exceeded");
  EXPECT_EQ(post_json(port(), "/v1/completions", {{"prompt", {1, 2}}}).status, 400);  // an encoder
}

}  // namespace
}  // namespace jagged
