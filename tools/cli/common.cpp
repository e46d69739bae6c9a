#include "common.h"

#include <unistd.h>

#include <filesystem>
#include <system_error>

namespace jagged::cli {

namespace fs = std::filesystem;

bool is_synthetic(const std::string& spec) { return spec.rfind("synthetic:", 0) == 0; }

LlamaModel open_llama(const std::string& spec) {
  if (is_synthetic(spec)) return LlamaModel::synthetic(spec.substr(10));
  return load_llama_model(spec);
}

std::unique_ptr<Tokenizer> open_tokenizer_for(const std::string& model_spec, const std::string& tokenizer_path,
                                              int64_t vocab_size) {
  if (!tokenizer_path.empty()) return load_tokenizer(tokenizer_path, vocab_size);
  if (is_synthetic(model_spec)) return nullptr;
  const fs::path model(model_spec);
  if (fs::is_directory(model)) {
    for (const char* name : {"tokenizer.json", "vocab.txt", "tokenizer.bin"}) {
      if (fs::exists(model / name)) return load_tokenizer(model / name, vocab_size);
    }
    throw FileError(concat(model.string(), ": no tokenizer.json or vocab.txt in the model directory; pass --tokenizer"));
  }
  if (model.extension() == ".gguf") return load_tokenizer(model, vocab_size);
  // llama2.c: the tokenizer sits beside the checkpoint (tokenizer.bin, or tok<vocab>.bin as in tinyllamas).
  for (const fs::path& candidate : {model.parent_path() / "tokenizer.bin",
                                   model.parent_path() / concat("tok", vocab_size, ".bin")}) {
    if (fs::exists(candidate)) return load_tokenizer(candidate, vocab_size);
  }
  throw FileError(concat(model.string(), ": no tokenizer.bin or tok", vocab_size,
                         ".bin beside the llama2.c checkpoint; pass --tokenizer"));
}

void prepare_output_file(const std::string& path, const char* flag) {
  if (path.empty()) return;
  const fs::path file = fs::absolute(path);
  const fs::path parent = file.parent_path();
  std::error_code error;
  fs::create_directories(parent, error);
  if (error || !fs::is_directory(parent) || access(parent.c_str(), W_OK) != 0) {
    throw InvalidArgument(concat(flag, " ", path, ": cannot write in the folder ", parent.string(),
                                 error ? concat(" (", error.message(), ")") : std::string()));
  }
  if (fs::exists(file) && (!fs::is_regular_file(file) || access(file.c_str(), W_OK) != 0)) {
    throw InvalidArgument(concat(flag, " ", path, ": exists and is not a writable regular file"));
  }
}

}  // namespace jagged::cli
