#include "common.h"

#include <filesystem>

namespace jagged::cli {

namespace fs = std::filesystem;

bool is_synthetic(const std::string& spec) { return spec.rfind("synthetic:", 0) == 0; }

LlamaModel open_llama(const std::string& spec, const std::string& dtype) {
  const ops::WeightType weight_type = ops::parse_weight_type(dtype);
  if (is_synthetic(spec)) return LlamaModel::synthetic(spec.substr(10), 1234, weight_type);
  return load_llama_model(spec, weight_type);
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

}  // namespace jagged::cli
