#include "server/chat_template.h"

#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "io/gguf.h"
#include "jagged/error.h"
#include "jagged/model_spec.h"

#if JAGGED_HAVE_JINJA
#include "jinja/caps.h"
#include "jinja/lexer.h"
#include "jinja/parser.h"
#include "jinja/runtime.h"
#include "jinja/value.h"
#include "json.h"
#endif

namespace jagged::server {

#if JAGGED_HAVE_JINJA

struct ChatTemplate::Impl {
  std::string source;
  std::string bos_token;
  std::string eos_token;
  jinja::program program;
  mutable std::mutex mutex;  // the engine's runtime is not documented as thread-safe: one render at a time
};

ChatTemplate::ChatTemplate(const std::string& source, std::string bos_token, std::string eos_token)
    : impl_(std::make_unique<Impl>()) {
  impl_->bos_token = std::move(bos_token);
  impl_->eos_token = std::move(eos_token);
  try {
    jinja::lexer lexer;
    auto tokens = lexer.tokenize(source);
    impl_->program = jinja::parse_from_tokens(tokens);
    impl_->source = tokens.source;
    jinja::caps_get(impl_->program);
  } catch (const std::exception& error) {
    throw InvalidArgument(concat("the chat template does not parse: ", error.what()));
  }
}

std::string ChatTemplate::render(const nlohmann::json& messages, bool add_generation_prompt) const {
  std::lock_guard lock(impl_->mutex);
  try {
    jinja::context context(impl_->source);
    common_json input = common_json::parse(
        nlohmann::json({{"messages", messages}, {"bos_token", impl_->bos_token}, {"eos_token", impl_->eos_token},
                        {"add_generation_prompt", add_generation_prompt}})
            .dump());
    jinja::global_from_json(context, input, /*mark_input=*/false);
    jinja::runtime runtime(context);
    const jinja::value result = runtime.execute(impl_->program);
    return jinja::runtime::gather_string_parts(result)->as_string().str();
  } catch (const std::exception& error) {
    throw InvalidArgument(concat("the chat template failed: ", error.what()));
  }
}

bool ChatTemplate::available() { return true; }

#else

struct ChatTemplate::Impl {};

ChatTemplate::ChatTemplate(const std::string&, std::string, std::string) {
  throw InvalidArgument(
      "chat templates need llama.cpp's Jinja engine, which this build lacks: run scripts/fetch_test_data.sh (or "
      "scripts/setup_llamacpp.sh), then reconfigure and rebuild");
}

std::string ChatTemplate::render(const nlohmann::json&, bool) const { return ""; }

bool ChatTemplate::available() { return false; }

#endif

ChatTemplate::~ChatTemplate() = default;

namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(concat(path.string(), ": cannot read the chat template"));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string from_tokenizer_config(const std::filesystem::path& path) {
  const nlohmann::json config = nlohmann::json::parse(read_file(path), nullptr, /*allow_exceptions=*/false);
  if (!config.is_object() || !config.contains("chat_template")) return "";
  const nlohmann::json& entry = config["chat_template"];
  if (entry.is_string()) return entry.get<std::string>();
  if (entry.is_array()) {  // [{"name": "default", "template": ...}, {"name": "tool_use", ...}]
    for (const auto& named : entry) {
      if (named.is_object() && named.value("name", "") == "default" && named.contains("template")) {
        return named["template"].get<std::string>();
      }
    }
  }
  return "";
}

}  // namespace

std::string find_chat_template(const std::string& model_spec, const std::string& template_file) {
  if (!template_file.empty()) return read_file(template_file);
  if (is_synthetic_spec(model_spec)) return "";
  const std::filesystem::path path(model_spec);
  const std::filesystem::path folder = std::filesystem::is_directory(path) ? path : path.parent_path();
  if (std::filesystem::exists(folder / "tokenizer_config.json")) {
    std::string found = from_tokenizer_config(folder / "tokenizer_config.json");
    if (!found.empty()) return found;
  }
  if (std::filesystem::is_regular_file(path) && path.extension() == ".gguf") {
    const io::GgufFile gguf = io::GgufFile::open(path);
    if (const io::GgufValue* value = gguf.find("tokenizer.chat_template")) return value->as_string("tokenizer.chat_template");
  }
  return "";
}

}  // namespace jagged::server
