// POST /v1/completions and POST /v1/chat/completions in OpenAI's shapes: the request body validated into a
// GenerationRequest (every refusal an ApiError 400 naming the parameter; a chat's messages rendered by the model's
// chat template), and the response objects, whole or as server-sent-event chunks.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "jagged/engine.h"
#include "jagged/tokenizer.h"

namespace jagged::server {

class ChatTemplate;

struct CompletionRequest {
  GenerationRequest generation;
  bool chat = false;              // /v1/chat/completions: chat shapes (message / delta, logprobs.content)
  bool stream = false;
  bool include_usage = false;     // stream_options.include_usage: a last chunk with the usage
  bool return_token_ids = false;  // extension (as vLLM's): the choice also lists the generated token ids
};

// The model the requests run on, for validation and encoding.
struct CompletionContext {
  const Tokenizer* tokenizer = nullptr;  // null: prompts must be token ids
  int64_t context_length = 0;
  int64_t vocab_size = 0;
  int32_t bos_id = -1;
  std::string model_name;
  const ChatTemplate* chat_template = nullptr;  // null: the model has none (chat requests get 400)
  std::string chat_template_problem;            // why there is none when the model has one (no engine, no parse)
};

// The prompt's token ids exactly as `jagged generate` makes them: the tokenizer's encoding with its special tokens,
// or BOS alone for an empty prompt.
std::vector<int32_t> encode_prompt(const std::string& text, const CompletionContext& context);

CompletionRequest parse_completion_request(const nlohmann::json& body, const CompletionContext& context);
// messages [{role, content}] rendered by the chat template, encoded with its special tokens parsed.
CompletionRequest parse_chat_request(const nlohmann::json& body, const CompletionContext& context);

// "stop" or "length" (a request that reached the context length ended by length, as in OpenAI's API).
std::string openai_finish_reason(FinishReason reason);

// Builds a choice's text, token ids and OpenAI logprobs from the engine's events: completions' {tokens,
// token_logprobs, top_logprobs, text_offset}, or chat's {content: [{token, logprob, bytes, top_logprobs}]}.
class ChoiceBuilder {
 public:
  ChoiceBuilder(const Tokenizer* tokenizer, int32_t last_prompt_token, int logprobs, bool chat)
      : tokenizer_(tokenizer), previous_(last_prompt_token), logprobs_(logprobs), chat_(chat) {}
  // Adds an event; returns the logprobs of just its tokens (null when not asked), for a stream chunk.
  nlohmann::json add(const RequestEvent& event);
  const std::string& text() const { return text_; }
  const std::vector<int32_t>& token_ids() const { return token_ids_; }
  nlohmann::json logprobs() const;  // of every token so far; null when not asked

 private:
  nlohmann::json logprobs_of(const RequestEvent& event);

  const Tokenizer* tokenizer_;
  int32_t previous_;
  int logprobs_;
  bool chat_;
  std::string text_;
  nlohmann::json chat_content_ = nlohmann::json::array();
  std::vector<int32_t> token_ids_;
  nlohmann::json tokens_ = nlohmann::json::array();
  nlohmann::json token_logprobs_ = nlohmann::json::array();
  nlohmann::json top_logprobs_ = nlohmann::json::array();
  nlohmann::json text_offset_ = nlohmann::json::array();
};

nlohmann::json usage_json(int64_t prompt_tokens, int64_t completion_tokens);

// {"id", "object", "created", "model", "choices": [choice]}; object: "text_completion", "chat.completion" or
// "chat.completion.chunk".
nlohmann::json completion_object(const std::string& id, int64_t created, const std::string& model,
                                 nlohmann::json choice, const char* object = "text_completion");

// A choice: completions' {index, text, logprobs, finish_reason}; chat's {index, message | delta, logprobs,
// finish_reason} (the first delta of a stream also carries the role).
nlohmann::json choice_json(const CompletionRequest& request, const std::string& text, nlohmann::json logprobs,
                           FinishReason finish, bool chunk, bool first_chunk);

}  // namespace jagged::server
