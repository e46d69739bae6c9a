// Helpers shared by CLI commands (frontends use only the public API).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "jagged/llama.h"
#include "jagged/tokenizer.h"

namespace jagged::cli {

// "synthetic:NAME" or a model file/directory.
LlamaModel open_llama(const std::string& spec);
bool is_synthetic(const std::string& spec);

// The tokenizer for a model: an explicit path wins; else the one inside or beside the model file; null for
// synthetic models.
std::unique_ptr<Tokenizer> open_tokenizer_for(const std::string& model_spec, const std::string& tokenizer_path,
                                              int64_t vocab_size);

// An output file named by `flag` (--json, --plot): creates its missing parent folders and checks, before any
// work is done, that the file can be written there. Creates no file.
void prepare_output_file(const std::string& path, const char* flag);

}  // namespace jagged::cli
