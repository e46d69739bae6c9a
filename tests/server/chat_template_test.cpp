// Chat templates: llama.cpp's Jinja engine (as jagged builds it) against @huggingface/jinja on the real templates
// and conversation of llama.cpp's tests/test-chat-template.cpp, and POST /v1/chat/completions end to end.
#include <gtest/gtest.h>

#include <cstdlib>

#include "jagged/server.h"
#include "server/chat_template.h"
#include "server/http_client.h"
#include "testing/files.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

using nlohmann::json;
using testing::post_json;

#define REQUIRE_JINJA()                                                                                       \
  do {                                                                                                        \
    if (!server::ChatTemplate::available()) {                                                                 \
      if (testing::shared_required()) FAIL() << "built without llama.cpp's Jinja engine";                     \
      GTEST_SKIP() << "built without llama.cpp's Jinja engine (run scripts/fetch_test_data.sh, reconfigure)"; \
    }                                                                                                         \
  } while (0)

// Every case @huggingface/jinja renders, jagged renders to the same string; that includes every case whose
// expected output (llama.cpp's) Hugging Face's engine reproduces.
TEST(ChatTemplate, RendersLlamaCppCasesAsHuggingFaceJinja) {
  REQUIRE_JINJA();
  // The data lives in the source tree's build/ (scripts/fetch_test_data.sh), whichever build runs the test.
  const std::filesystem::path build = std::filesystem::path(JAGGED_SOURCE_DIR) / "build";
  const std::filesystem::path cases_path = build / "test-data" / "chat-template-cases.json";
  if (!std::filesystem::exists(cases_path)) {
    const std::string command = concat("bash ", JAGGED_SOURCE_DIR, "/tests/server/chat_template_cases.sh ", build.string());
    const int status = std::system(command.c_str());
    if (status != 0 || !std::filesystem::exists(cases_path)) {
      if (testing::shared_required()) FAIL() << command << " failed";
      GTEST_SKIP() << command << " failed (no llama.cpp tree or no npm)";
    }
  }
  const json cases = json::parse(testing::read_text(cases_path));
  int compared = 0;
  int expected_matched = 0;
  for (const json& entry : cases) {
    if (entry["hf_output"].is_null()) continue;
    const std::string name = entry["name"];
    std::string ours;
    try {
      const server::ChatTemplate chat_template(entry["template"], entry["bos_token"], entry["eos_token"]);
      ours = chat_template.render(entry["messages"], /*add_generation_prompt=*/true);
    } catch (const std::exception& error) {
      ADD_FAILURE() << name << ": " << error.what();
      continue;
    }
    EXPECT_EQ(ours, entry["hf_output"].get<std::string>()) << name;
    ++compared;
    if (ours == entry["expected"].get<std::string>()) ++expected_matched;
  }
  EXPECT_GE(compared, 25);
  EXPECT_GE(expected_matched, 20);
}

TEST(ChatTemplate, ProblemsAreNamed) {
  REQUIRE_JINJA();
  try {
    server::ChatTemplate broken("{% for message in messages %}{{ message['content'] }}", "", "");
    broken.render(json::array({{{"role", "user"}, {"content", "hi"}}}), true);
    ADD_FAILURE() << "an unterminated for-loop was accepted";
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("chat template"), std::string::npos) << error.what();
  }
  const server::ChatTemplate raising("{{ raise_exception('Conversation roles must alternate') }}", "", "");
  try {
    raising.render(json::array({{{"role", "user"}, {"content", "hi"}}}), true);
    ADD_FAILURE() << "raise_exception did not raise";
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("Conversation roles must alternate"), std::string::npos) << error.what();
  }
}

std::filesystem::path stories_dir() { return testing::shared_dir() / "models" / "stories260K"; }

class ChatServer : public testing::ScratchDirTest {
 protected:
  void start(const std::string& chat_template) {
    ServerOptions options;
    options.model = (stories_dir() / "stories260K.bin").string();
    options.port = 0;
    if (!chat_template.empty()) options.chat_template = write_file("template.jinja", chat_template).string();
    server_ = std::make_unique<Server>(options);
    server_->start();
    server_->load();
  }
  int port() const { return server_->port(); }
  std::unique_ptr<Server> server_;
};

const char* kChatMl =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
    "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

// A chat is the completion of its rendered prompt: same tokens, same text; streamed chunks add up to it.
TEST_F(ChatServer, ChatIsTheCompletionOfTheRenderedPrompt) {
  JAGGED_REQUIRE_PATH(stories_dir() / "stories260K.bin");
  REQUIRE_JINJA();
  start(kChatMl);
  const json messages = json::array({{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "Hello"}}});
  const json chat_request = {{"messages", messages}, {"max_tokens", 24}, {"temperature", 0.7}, {"seed", 3},
                             {"return_token_ids", true}, {"logprobs", true}, {"top_logprobs", 2}};
  const testing::HttpAnswer chat = post_json(port(), "/v1/chat/completions", chat_request);
  ASSERT_EQ(chat.status, 200) << chat.body;
  const json body = chat.json();
  EXPECT_EQ(body["object"], "chat.completion");
  const json& choice = body["choices"][0];
  EXPECT_EQ(choice["message"]["role"], "assistant");
  ASSERT_EQ(choice["logprobs"]["content"].size(), choice["token_ids"].size());
  EXPECT_EQ(choice["logprobs"]["content"][0]["top_logprobs"].size(), 2u);

  const std::string rendered = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
                               "<|im_start|>assistant\n";
  const testing::HttpAnswer ids = post_json(port(), "/tokenize", {{"prompt", rendered}, {"add_special_tokens", false}});
  ASSERT_EQ(ids.status, 200);
  const testing::HttpAnswer completion = post_json(port(), "/v1/completions",
      {{"prompt", ids.json()["tokens"]}, {"max_tokens", 24}, {"temperature", 0.7}, {"seed", 3}, {"return_token_ids", true}});
  ASSERT_EQ(completion.status, 200) << completion.body;
  EXPECT_EQ(choice["token_ids"], completion.json()["choices"][0]["token_ids"]);
  EXPECT_EQ(choice["message"]["content"], completion.json()["choices"][0]["text"]);
  EXPECT_EQ(body["usage"]["prompt_tokens"], ids.json()["count"]);

  json stream_request = chat_request;
  stream_request["stream"] = true;
  stream_request["stream_options"] = {{"include_usage", true}};
  const testing::SseStream stream = testing::parse_sse(post_json(port(), "/v1/chat/completions", stream_request).body);
  ASSERT_TRUE(stream.done);
  ASSERT_GE(stream.chunks.size(), 2u);
  EXPECT_EQ(stream.chunks[0]["object"], "chat.completion.chunk");
  EXPECT_EQ(stream.chunks[0]["choices"][0]["delta"]["role"], "assistant");
  std::string text;
  for (const json& chunk : stream.chunks) {
    if (chunk["choices"].empty()) {
      EXPECT_EQ(chunk["usage"], body["usage"]);
      continue;
    }
    text += chunk["choices"][0]["delta"].value("content", "");
  }
  EXPECT_EQ(text, choice["message"]["content"]);
}

TEST_F(ChatServer, TemplateProblemsAndBadMessagesGet400) {
  JAGGED_REQUIRE_PATH(stories_dir() / "stories260K.bin");
  REQUIRE_JINJA();
  start("{% if messages[0]['role'] != 'user' %}{{ raise_exception('the first message must be the user') }}{% endif %}"
        "{{ messages[0]['content'] }}");
  const testing::HttpAnswer raised = post_json(port(), "/v1/chat/completions",
                                               {{"messages", {{{"role", "system"}, {"content", "x"}}}}});
  EXPECT_EQ(raised.status, 400);
  EXPECT_NE(raised.body.find("the first message must be the user"), std::string::npos) << raised.body;
  EXPECT_EQ(raised.json()["error"]["code"], "chat_template_error");
  EXPECT_EQ(post_json(port(), "/v1/chat/completions", {{"messages", json::array()}}).status, 400);
  EXPECT_EQ(post_json(port(), "/v1/chat/completions", {{"messages", {{{"content", "no role"}}}}}).status, 400);
  EXPECT_EQ(post_json(port(), "/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "a"}}}}, {"n", 3}}).status, 400);
  EXPECT_EQ(post_json(port(), "/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "a"}}}},
                                                       {"top_logprobs", 2}}).status, 400);
  EXPECT_EQ(post_json(port(), "/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "a"}}}},
                                                       {"max_tokens", 2}}).status, 200);
}

TEST_F(ChatServer, AModelWithoutTemplateSaysSo) {
  JAGGED_REQUIRE_PATH(stories_dir() / "stories260K.bin");
  start("");
  const testing::HttpAnswer answer = post_json(port(), "/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "a"}}}}});
  EXPECT_EQ(answer.status, 400);
  EXPECT_NE(answer.body.find("chat"), std::string::npos) << answer.body;
}

}  // namespace
}  // namespace jagged
