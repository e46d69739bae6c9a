// POST /v1/completions in OpenAI's shapes: the request body validated into a GenerationRequest (every refusal an
// ApiError 400 naming the parameter), and the response objects, whole or as server-sent-event chunks.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "jagged/engine.h"
#include "jagged/tokenizer.h"

namespace jagged::server {

struct CompletionRequest {
  GenerationRequest generation;
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
};

// The prompt's token ids exactly as `jagged generate` makes them: the tokenizer's encoding with its special tokens,
// or BOS alone for an empty prompt.
std::vector<int32_t> encode_prompt(const std::string& text, const CompletionContext& context);

CompletionRequest parse_completion_request(const nlohmann::json& body, const CompletionContext& context);

// "stop" or "length" (a request that reached the context length ended by length, as in OpenAI's API).
std::string openai_finish_reason(FinishReason reason);

// Builds a choice's text, token ids and OpenAI completion logprobs ({tokens, token_logprobs, top_logprobs,
// text_offset}) from the engine's events.
class ChoiceBuilder {
 public:
  ChoiceBuilder(const Tokenizer* tokenizer, int32_t last_prompt_token, int logprobs)
      : tokenizer_(tokenizer), previous_(last_prompt_token), logprobs_(logprobs) {}
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
  std::string text_;
  std::vector<int32_t> token_ids_;
  nlohmann::json tokens_ = nlohmann::json::array();
  nlohmann::json token_logprobs_ = nlohmann::json::array();
  nlohmann::json top_logprobs_ = nlohmann::json::array();
  nlohmann::json text_offset_ = nlohmann::json::array();
};

nlohmann::json usage_json(int64_t prompt_tokens, int64_t completion_tokens);

// {"id", "object": "text_completion", "created", "model", "choices": [...]} with one choice.
nlohmann::json completion_object(const std::string& id, int64_t created, const std::string& model,
                                 nlohmann::json choice);

}  // namespace jagged::server
