// A model as a user names it (a CLI argument, Python's jagged.load): "synthetic:NAME" or a model file/directory,
// and the tokenizer that belongs to it. Every frontend opens models through these, so they all accept the same
// names and find the same tokenizers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "jagged/bert.h"
#include "jagged/llama.h"
#include "jagged/tokenizer.h"

namespace jagged {

bool is_synthetic_spec(const std::string& spec);  // "synthetic:NAME"

// "llama" (decoder) or "bert" (encoder): synthetic:NAME by the synthetic list that has NAME, a file or directory by
// its architecture. InvalidArgument for an unknown synthetic name, FileError for a file that cannot be read.
std::string model_family(const std::string& spec);

// dtype: the weights' storage type in memory ("f32", "bf16", "q8_0", "q4_0"...; ops::parse_weight_type); a GGUF
// file's quantized tensors keep their own type.
LlamaModel open_llama_model(const std::string& spec, const std::string& dtype = "f32");
BertModel open_bert_model(const std::string& spec, const std::string& dtype = "f32");

// The tokenizer inside or beside a model file (tokenizer.json / vocab.txt / tokenizer.bin in a directory, the
// vocabulary inside a GGUF, tokenizer.bin or tok<vocab_size>.bin beside a llama2.c checkpoint); null when there is
// none (and for synthetic models). FileError when one is there but cannot be read.
std::unique_ptr<Tokenizer> find_model_tokenizer(const std::string& spec, int64_t vocab_size);

// The tokenizer for a model: an explicit tokenizer_path wins; else the one inside or beside the model file
// (tokenizer.json / vocab.txt / tokenizer.bin in a directory, the vocabulary inside a GGUF, tokenizer.bin or
// tok<vocab_size>.bin beside a llama2.c checkpoint); null for synthetic models. FileError when a model file has
// none.
std::unique_ptr<Tokenizer> open_model_tokenizer(const std::string& spec, const std::string& tokenizer_path,
                                                int64_t vocab_size);

}  // namespace jagged
