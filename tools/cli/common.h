// Helpers shared by CLI commands (frontends use only the public API). Models and tokenizers are opened through
// the library (jagged/model_spec.h), as the Python module opens them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "jagged/model_spec.h"

namespace jagged::cli {

inline bool is_synthetic(const std::string& spec) { return is_synthetic_spec(spec); }
// "synthetic:NAME" or a model file/directory; dtype: the weights' storage type (--dtype).
inline LlamaModel open_llama(const std::string& spec, const std::string& dtype = "f32") {
  return open_llama_model(spec, dtype);
}
inline BertModel open_bert(const std::string& spec, const std::string& dtype = "f32") {
  return open_bert_model(spec, dtype);
}

// The tokenizer for a model: an explicit path wins; else the one inside or beside the model file; null for
// synthetic models.
inline std::unique_ptr<Tokenizer> open_tokenizer_for(const std::string& model_spec, const std::string& tokenizer_path,
                                                     int64_t vocab_size) {
  return open_model_tokenizer(model_spec, tokenizer_path, vocab_size);
}

}  // namespace jagged::cli
