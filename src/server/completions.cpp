#include "server/completions.h"

#include <cmath>
#include <limits>
#include <random>

#include "server/api_error.h"
#include "server/chat_template.h"

namespace jagged::server {
namespace {

using nlohmann::json;

ApiError invalid(const std::string& param, const std::string& message) { return ApiError(400, message, param); }

bool present(const json& body, const char* name) { return body.contains(name) && !body.at(name).is_null(); }

double number_param(const json& body, const char* name, double fallback, double min, double max) {
  if (!present(body, name)) return fallback;
  const json& value = body.at(name);
  if (!value.is_number()) throw invalid(name, concat("'", name, "' must be a number"));
  const double number = value.get<double>();
  if (!std::isfinite(number) || number < min || number > max) {
    throw invalid(name, concat("'", name, "' must be in [", min, ", ", max, "], got ", number));
  }
  return number;
}

int64_t integer_param(const json& body, const char* name, int64_t fallback, int64_t min, int64_t max) {
  if (!present(body, name)) return fallback;
  const json& value = body.at(name);
  if (!value.is_number_integer()) throw invalid(name, concat("'", name, "' must be an integer"));
  const int64_t number = value.is_number_unsigned() && value.get<uint64_t>() > uint64_t(max)
                             ? max + 1 : value.get<int64_t>();
  if (number < min || number > max) {
    throw invalid(name, concat("'", name, "' must be in [", min, ", ", max, "], got ", value.dump()));
  }
  return number;
}

bool bool_param(const json& body, const char* name, bool fallback) {
  if (!present(body, name)) return fallback;
  if (!body.at(name).is_boolean()) throw invalid(name, concat("'", name, "' must be true or false"));
  return body.at(name).get<bool>();
}

std::vector<int32_t> token_ids(const json& array, const CompletionContext& context) {
  std::vector<int32_t> ids;
  for (const json& id : array) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= context.vocab_size) {
      throw invalid("prompt", concat("token id ", id.dump(), " is not in [0, ", context.vocab_size, ")"));
    }
    ids.push_back(id.get<int32_t>());
  }
  return ids;
}

std::vector<int32_t> prompt_ids(const json& body, const CompletionContext& context) {
  if (!present(body, "prompt")) throw invalid("prompt", "'prompt' is required");
  json prompt = body.at("prompt");
  // A list holding one prompt (a string or token ids) is that prompt; several prompts need n choices.
  if (prompt.is_array() && prompt.size() == 1 && (prompt[0].is_string() || prompt[0].is_array())) {
    prompt = json(prompt[0]);
  }
  if (prompt.is_string()) {
    if (context.tokenizer == nullptr && !prompt.get<std::string>().empty()) {
      throw invalid("prompt", "the model has no tokenizer: send the prompt as a list of token ids");
    }
    return encode_prompt(prompt.get<std::string>(), context);
  }
  if (prompt.is_array() && !prompt.empty() && prompt[0].is_number()) return token_ids(prompt, context);
  if (prompt.is_array() && prompt.size() > 1) {
    throw invalid("prompt", "one prompt per request: send a string or one list of token ids");
  }
  throw invalid("prompt", "'prompt' must be a string or a non-empty list of token ids");
}

std::vector<std::string> stop_param(const json& body) {
  if (!present(body, "stop")) return {};
  const json& stop = body.at("stop");
  std::vector<std::string> strings;
  if (stop.is_string()) {
    strings.push_back(stop.get<std::string>());
  } else if (stop.is_array() && stop.size() <= 16) {
    for (const json& item : stop) {
      if (!item.is_string()) throw invalid("stop", "'stop' must be a string or a list of strings");
      strings.push_back(item.get<std::string>());
    }
  } else {
    throw invalid("stop", "'stop' must be a string or a list of at most 16 strings");
  }
  for (const std::string& text : strings) {
    if (text.empty()) throw invalid("stop", "stop strings must not be empty");
  }
  return strings;
}

void refuse_unsupported(const json& body) {
  if (integer_param(body, "n", 1, 1, 1 << 20) != 1) throw invalid("n", "only n = 1 is supported");
  if (integer_param(body, "best_of", 1, 1, 1 << 20) != 1) throw invalid("best_of", "only best_of = 1 is supported");
  if (bool_param(body, "echo", false)) throw invalid("echo", "'echo' is not supported");
  if (present(body, "suffix")) throw invalid("suffix", "'suffix' is not supported");
  if (present(body, "logit_bias") && !(body.at("logit_bias").is_object() && body.at("logit_bias").empty())) {
    throw invalid("logit_bias", "'logit_bias' is not supported");
  }
}

}  // namespace

std::vector<int32_t> encode_prompt(const std::string& text, const CompletionContext& context) {
  std::vector<int32_t> ids =
      context.tokenizer != nullptr ? context.tokenizer->encode(text, /*add_special=*/true) : std::vector<int32_t>{};
  if (ids.empty() || context.tokenizer == nullptr) ids.insert(ids.begin(), context.bos_id);
  return ids;
}

namespace {

void check_model(const json& body, const CompletionContext& context) {
  if (!present(body, "model")) return;
  if (body.at("model").is_string() && body.at("model").get<std::string>() == context.model_name) return;
  throw ApiError(404, concat("the model '", body.at("model").is_string() ? body.at("model").get<std::string>()
                                                                          : body.at("model").dump(),
                             "' does not exist; this server serves '", context.model_name, "'"),
                 "model", "model_not_found");
}

// Everything but the prompt: lengths against the context, sampling, stop strings, streaming. `max_tokens_name`:
// the parameter that bounds the output ("max_tokens", or chat's "max_completion_tokens" when the client sent it).
CompletionRequest parse_generation(const json& body, std::vector<int32_t> prompt, const CompletionContext& context,
                                   bool chat) {
  CompletionRequest request;
  request.chat = chat;
  GenerationRequest& generation = request.generation;
  generation.prompt = std::move(prompt);
  const auto prompt_tokens = static_cast<int64_t>(generation.prompt.size());
  if (prompt_tokens >= context.context_length) {
    throw ApiError(400, concat("the prompt is ", prompt_tokens, " tokens; this model's context is ",
                               context.context_length, " tokens, and generating needs one more"),
                   chat ? "messages" : "prompt", "context_length_exceeded");
  }
  const int64_t room = context.context_length - prompt_tokens;
  const char* max_tokens_name = chat && present(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  if (present(body, max_tokens_name)) {
    generation.max_tokens = integer_param(body, max_tokens_name, 16, 1, std::numeric_limits<int32_t>::max());
    if (generation.max_tokens > room) {
      throw ApiError(400, concat("this model's maximum context length is ", context.context_length,
                                 " tokens; the prompt has ", prompt_tokens, " and ", max_tokens_name, " asks for ",
                                 generation.max_tokens, " more (at most ", room, ")"),
                     max_tokens_name, "context_length_exceeded");
    }
  } else {
    generation.max_tokens = chat ? room : std::min<int64_t>(16, room);  // OpenAI's defaults
  }
  SamplingParams& sampling = generation.sampling;
  sampling.temperature = static_cast<float>(number_param(body, "temperature", 1.0, 0.0, 100.0));
  sampling.top_p = static_cast<float>(number_param(body, "top_p", 1.0, 1e-9, 1.0));
  const int64_t top_k = integer_param(body, "top_k", 0, -1, std::numeric_limits<int32_t>::max());
  sampling.top_k = static_cast<int>(top_k < 0 ? 0 : top_k);  // -1 (vLLM) and 0 both mean all
  sampling.min_p = static_cast<float>(number_param(body, "min_p", 0.0, 0.0, 1.0));
  sampling.presence_penalty = static_cast<float>(number_param(body, "presence_penalty", 0.0, -2.0, 2.0));
  sampling.frequency_penalty = static_cast<float>(number_param(body, "frequency_penalty", 0.0, -2.0, 2.0));
  sampling.repetition_penalty = static_cast<float>(number_param(body, "repetition_penalty", 1.0, 1e-6, 100.0));
  if (present(body, "seed")) {
    sampling.seed = static_cast<uint64_t>(integer_param(body, "seed", 0, std::numeric_limits<int64_t>::min(),
                                                        std::numeric_limits<int64_t>::max()));
  } else {
    sampling.seed = std::random_device{}();  // OpenAI: unseeded requests differ
  }
  generation.stop = stop_param(body);
  if (!generation.stop.empty() && context.tokenizer == nullptr) {
    throw invalid("stop", "stop strings need a tokenizer; this model has none");
  }
  generation.ignore_eos = bool_param(body, "ignore_eos", false);
  if (chat) {  // logprobs: true/false, top_logprobs: how many alternatives
    const bool logprobs = bool_param(body, "logprobs", false);
    const int64_t top = integer_param(body, "top_logprobs", 0, 0, 20);
    if (present(body, "top_logprobs") && !logprobs) throw invalid("top_logprobs", "'top_logprobs' needs logprobs = true");
    generation.logprobs = logprobs ? static_cast<int>(top) : -1;
  } else {
    generation.logprobs = static_cast<int>(integer_param(body, "logprobs", -1, 0, 20));
  }
  request.stream = bool_param(body, "stream", false);
  if (present(body, "stream_options")) {
    const json& options = body.at("stream_options");
    if (!options.is_object()) throw invalid("stream_options", "'stream_options' must be an object");
    if (!request.stream) throw invalid("stream_options", "'stream_options' is only allowed with stream = true");
    request.include_usage = bool_param(options, "include_usage", false);
  }
  request.return_token_ids = bool_param(body, "return_token_ids", false);
  return request;
}

// OpenAI's messages as the template sees them: role and content (a string; text parts joined).
json chat_messages(const json& body) {
  if (!present(body, "messages") || !body.at("messages").is_array() || body.at("messages").empty()) {
    throw invalid("messages", "'messages' must be a non-empty list of {role, content}");
  }
  json messages = json::array();
  for (const json& message : body.at("messages")) {
    if (!message.is_object() || !message.contains("role") || !message["role"].is_string()) {
      throw invalid("messages", "each message needs a 'role' string");
    }
    std::string content;
    const json none;
    const json& value = message.contains("content") ? message["content"] : none;
    if (value.is_string()) {
      content = value.get<std::string>();
    } else if (value.is_array()) {
      for (const json& part : value) {
        if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string()) {
          throw invalid("messages", "only text content parts ({\"type\": \"text\", \"text\": ...}) are supported");
        }
        content += part["text"].get<std::string>();
      }
    } else if (!value.is_null()) {
      throw invalid("messages", "a message's 'content' must be a string, a list of text parts, or null");
    }
    messages.push_back({{"role", message["role"]}, {"content", content}});
  }
  return messages;
}

}  // namespace

CompletionRequest parse_completion_request(const json& body, const CompletionContext& context) {
  if (!body.is_object()) throw ApiError(400, "the request body must be a JSON object");
  check_model(body, context);
  refuse_unsupported(body);
  return parse_generation(body, prompt_ids(body, context), context, /*chat=*/false);
}

CompletionRequest parse_chat_request(const json& body, const CompletionContext& context) {
  if (!body.is_object()) throw ApiError(400, "the request body must be a JSON object");
  check_model(body, context);
  if (integer_param(body, "n", 1, 1, 1 << 20) != 1) throw invalid("n", "only n = 1 is supported");
  if (present(body, "logit_bias") && !(body.at("logit_bias").is_object() && body.at("logit_bias").empty())) {
    throw invalid("logit_bias", "'logit_bias' is not supported");
  }
  if (present(body, "tools") || present(body, "tool_choice")) throw invalid("tools", "tools are not supported");
  const json messages = chat_messages(body);
  if (context.chat_template == nullptr && !context.chat_template_problem.empty()) {
    throw ApiError(400, context.chat_template_problem, "messages", "chat_template_error");
  }
  if (context.chat_template == nullptr) {
    throw ApiError(400, concat("the model '", context.model_name,
                               "' has no chat template: start the server with --chat-template FILE, or use "
                               "/v1/completions"), "messages");
  }
  if (context.tokenizer == nullptr) throw invalid("messages", "chat needs a tokenizer; this model has none");
  std::string text;
  try {
    text = context.chat_template->render(messages, /*add_generation_prompt=*/true);
  } catch (const InvalidArgument& error) {
    throw ApiError(400, error.what(), "messages", "chat_template_error");
  }
  std::vector<int32_t> prompt = context.tokenizer->encode(text, /*add_special=*/false, /*parse_special=*/true);
  if (prompt.empty()) prompt.push_back(context.bos_id);
  return parse_generation(body, std::move(prompt), context, /*chat=*/true);
}

std::string openai_finish_reason(FinishReason reason) {
  switch (reason) {
    case FinishReason::stop: return "stop";
    case FinishReason::length:
    case FinishReason::context: return "length";
    case FinishReason::cancelled: return "cancelled";
    case FinishReason::none: break;
  }
  return "";
}

json ChoiceBuilder::add(const RequestEvent& event) {
  json chunk = logprobs_of(event);  // offsets count the text before this event's
  text_ += event.text;
  token_ids_.insert(token_ids_.end(), event.tokens.begin(), event.tokens.end());
  return chunk;
}

namespace {

json utf8_bytes(const std::string& text) {
  json bytes = json::array();
  for (const char byte : text) bytes.push_back(static_cast<unsigned char>(byte));
  return bytes;
}

}  // namespace

json ChoiceBuilder::logprobs_of(const RequestEvent& event) {
  if (logprobs_ < 0) {
    for (const int32_t token : event.tokens) previous_ = token;
    return nullptr;
  }
  if (chat_) {
    json content = json::array();
    for (size_t t = 0; t < event.tokens.size(); ++t) {
      const int32_t token = event.tokens[t];
      const int32_t before = previous_;  // alternatives are decoded in the chosen token's place
      const std::string piece = tokenizer_ != nullptr ? tokenizer_->decode_token(before, token) : concat("token_id:", token);
      previous_ = token;
      json top = json::array();
      if (t < event.top_logprobs.size()) {
        for (const TokenLogprob& entry : event.top_logprobs[t]) {
          const std::string name = tokenizer_ != nullptr ? tokenizer_->decode_token(before, entry.token)
                                                         : concat("token_id:", entry.token);
          top.push_back({{"token", name}, {"logprob", entry.logprob}, {"bytes", utf8_bytes(name)}});
        }
      }
      json entry = {{"token", piece},
                    {"logprob", t < event.logprobs.size() ? event.logprobs[t].logprob : 0.0f},
                    {"bytes", utf8_bytes(piece)},
                    {"top_logprobs", top}};
      content.push_back(entry);
      chat_content_.push_back(entry);
    }
    return {{"content", content}};
  }
  json chunk = {{"tokens", json::array()}, {"token_logprobs", json::array()}, {"top_logprobs", json::array()},
                {"text_offset", json::array()}};
  for (size_t t = 0; t < event.tokens.size(); ++t) {
    const int32_t token = event.tokens[t];
    const int32_t before = previous_;  // alternatives are decoded in the chosen token's place
    // The token's own text (byte-level pieces of a split character stay as they decode, possibly invalid UTF-8,
    // which the JSON writer replaces).
    const std::string piece = tokenizer_ != nullptr ? tokenizer_->decode_token(before, token) : concat("token_id:", token);
    previous_ = token;
    const auto offset = static_cast<int64_t>(text_.size());  // text held back for stop strings is not counted
    const float logprob = t < event.logprobs.size() ? event.logprobs[t].logprob : 0.0f;
    json top = json::object();
    if (t < event.top_logprobs.size()) {
      for (const TokenLogprob& entry : event.top_logprobs[t]) {
        const std::string name = tokenizer_ != nullptr ? tokenizer_->decode_token(before, entry.token)
                                                       : concat("token_id:", entry.token);
        if (!top.contains(name)) top[name] = entry.logprob;
      }
    }
    chunk["tokens"].push_back(piece);
    chunk["token_logprobs"].push_back(logprob);
    chunk["top_logprobs"].push_back(top);
    chunk["text_offset"].push_back(offset);
    tokens_.push_back(piece);
    token_logprobs_.push_back(logprob);
    top_logprobs_.push_back(top);
    text_offset_.push_back(offset);
  }
  return chunk;
}

json ChoiceBuilder::logprobs() const {
  if (logprobs_ < 0) return nullptr;
  if (chat_) return {{"content", chat_content_}};
  return {{"tokens", tokens_}, {"token_logprobs", token_logprobs_}, {"top_logprobs", top_logprobs_},
          {"text_offset", text_offset_}};
}

json usage_json(int64_t prompt_tokens, int64_t completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

json choice_json(const CompletionRequest& request, const std::string& text, json logprobs, FinishReason finish,
                 bool chunk, bool first_chunk) {
  const json finish_reason = finish == FinishReason::none ? json(nullptr) : json(openai_finish_reason(finish));
  if (!request.chat) {
    return {{"index", 0}, {"text", text}, {"logprobs", std::move(logprobs)}, {"finish_reason", finish_reason}};
  }
  json choice = {{"index", 0}, {"logprobs", std::move(logprobs)}, {"finish_reason", finish_reason}};
  if (!chunk) {
    choice["message"] = {{"role", "assistant"}, {"content", text}};
  } else {
    json delta = json::object();
    if (first_chunk) delta["role"] = "assistant";
    if (!text.empty() || first_chunk) delta["content"] = text;
    choice["delta"] = delta;
  }
  return choice;
}

json completion_object(const std::string& id, int64_t created, const std::string& model, json choice,
                       const char* object) {
  return {{"id", id},
          {"object", object},
          {"created", created},
          {"model", model},
          {"choices", json::array({std::move(choice)})}};
}

}  // namespace jagged::server
