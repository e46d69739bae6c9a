// Opening models by the names users give them (jagged/model_spec.h).
#include "jagged/model_spec.h"

#include <algorithm>
#include <filesystem>

#include "jagged/error.h"
#include "jagged/model_files.h"

namespace jagged {

namespace fs = std::filesystem;

namespace {

constexpr size_t kSyntheticPrefix = 10;  // "synthetic:"

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

bool is_synthetic_spec(const std::string& spec) { return spec.rfind("synthetic:", 0) == 0; }

std::string model_family(const std::string& spec) {
  if (!is_synthetic_spec(spec)) return model_architecture(spec);
  const std::string name = spec.substr(kSyntheticPrefix);
  const std::vector<std::string> decoders = LlamaModel::synthetic_names();
  const std::vector<std::string> encoders = BertModel::synthetic_names();
  if (contains(decoders, name)) return "llama";
  if (contains(encoders, name)) return "bert";
  std::string known;
  for (const auto& list : {decoders, encoders}) {
    for (const auto& entry : list) known += " " + entry;
  }
  throw InvalidArgument(concat("unknown synthetic model '", name, "'; known:", known));
}

LlamaModel open_llama_model(const std::string& spec, const std::string& dtype) {
  const ops::WeightType weight_type = ops::parse_weight_type(dtype);
  if (is_synthetic_spec(spec)) return LlamaModel::synthetic(spec.substr(kSyntheticPrefix), 1234, weight_type);
  return load_llama_model(spec, weight_type);
}

BertModel open_bert_model(const std::string& spec, const std::string& dtype) {
  const ops::WeightType weight_type = ops::parse_weight_type(dtype);
  if (is_synthetic_spec(spec)) return BertModel::synthetic(spec.substr(kSyntheticPrefix), 1234, weight_type);
  return load_bert_model(spec, weight_type);
}

std::unique_ptr<Tokenizer> find_model_tokenizer(const std::string& spec, int64_t vocab_size) {
  if (is_synthetic_spec(spec)) return nullptr;
  const fs::path model(spec);
  if (fs::is_directory(model)) {
    for (const char* name : {"tokenizer.json", "vocab.txt", "tokenizer.bin"}) {
      if (fs::exists(model / name)) return load_tokenizer(model / name, vocab_size);
    }
    return nullptr;
  }
  if (model.extension() == ".gguf") return load_tokenizer(model, vocab_size);
  // llama2.c: the tokenizer sits beside the checkpoint (tokenizer.bin, or tok<vocab>.bin as in tinyllamas).
  for (const fs::path& candidate : {model.parent_path() / "tokenizer.bin",
                                   model.parent_path() / concat("tok", vocab_size, ".bin")}) {
    if (fs::exists(candidate)) return load_tokenizer(candidate, vocab_size);
  }
  return nullptr;
}

std::unique_ptr<Tokenizer> open_model_tokenizer(const std::string& spec, const std::string& tokenizer_path,
                                                int64_t vocab_size) {
  if (!tokenizer_path.empty()) return load_tokenizer(tokenizer_path, vocab_size);
  if (is_synthetic_spec(spec)) return nullptr;
  std::unique_ptr<Tokenizer> tokenizer = find_model_tokenizer(spec, vocab_size);
  if (tokenizer != nullptr) return tokenizer;
  const fs::path model(spec);
  if (fs::is_directory(model)) {
    throw FileError(
        concat(model.string(), ": no tokenizer.json or vocab.txt in the model directory; pass --tokenizer"));
  }
  throw FileError(concat(model.string(), ": no tokenizer.bin or tok", vocab_size,
                         ".bin beside the llama2.c checkpoint; pass --tokenizer"));
}

}  // namespace jagged
