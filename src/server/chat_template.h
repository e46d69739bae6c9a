// Chat templates: a model's Jinja template (GGUF tokenizer.chat_template, tokenizer_config.json's chat_template, or
// a file) rendered over OpenAI chat messages by llama.cpp's Jinja engine (common/jinja, a C++ port of Hugging
// Face's @huggingface/jinja), compiled from the llama.cpp source fetched into build/ at set-up when present.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

namespace jagged::server {

class ChatTemplate {
 public:
  // Parses `source`; InvalidArgument naming the problem when it does not parse, or when jagged was built without
  // the Jinja engine (available() false).
  ChatTemplate(const std::string& source, std::string bos_token, std::string eos_token);
  ~ChatTemplate();
  ChatTemplate(const ChatTemplate&) = delete;
  ChatTemplate& operator=(const ChatTemplate&) = delete;

  // The prompt for `messages` (OpenAI's [{role, content}]), with the assistant's opening when
  // add_generation_prompt. InvalidArgument with the template's own message (raise_exception) or the engine's.
  std::string render(const nlohmann::json& messages, bool add_generation_prompt) const;

  static bool available();  // built with llama.cpp's Jinja engine

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The chat template that belongs to a model spec: `template_file` when given, else tokenizer_config.json's
// chat_template (a string, or the entry named "default" of a list) in or beside the model, else a GGUF's
// tokenizer.chat_template; empty when there is none. FileError when a named file cannot be read.
std::string find_chat_template(const std::string& model_spec, const std::string& template_file);

}  // namespace jagged::server
