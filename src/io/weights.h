// The format-neutral half of model loading: the tensors a config implies (canonical names, PyTorch-order
// shapes), config sanity checks, and one routine that validates every tensor (presence, shape, dtype) before
// reading any of them. Each format (llama2.c, safetensors, GGUF) only lists what its files hold.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "jagged/model_config.h"

namespace jagged::io {

// One tensor found in a model file under its canonical name, not yet read.
struct SourceTensor {
  std::string origin;                    // for messages: "model.norm.weight in /m/model.safetensors"
  Shape shape;                           // PyTorch order
  std::function<void()> check_readable;  // FileError for a dtype that cannot be converted to f32
  std::function<Tensor()> read;          // the data as f32
};
using SourceMap = std::map<std::string, SourceTensor>;

struct ExpectedTensor {
  std::string name;  // canonical
  Shape shape;
};

// Every tensor a model of this config needs (output.weight only when untied, q/k/v biases with qkv_bias).
std::vector<ExpectedTensor> expected_llama_tensors(const LlamaConfig& config);
// BERT encoder tensors, plus the pooler when with_pooler and the classifier when config.num_labels > 0.
std::vector<ExpectedTensor> expected_bert_tensors(const BertConfig& config, bool with_pooler);

// FileError naming `source` when a value is out of range or inconsistent (heads not dividing, absurd sizes).
void validate_config(const LlamaConfig& config, const std::string& source);
void validate_config(const BertConfig& config, const std::string& source);

// Checks that every expected tensor is in `sources` with the expected shape and a readable dtype, and that
// `sources` holds nothing else (the caller drops tensors it knows to be unused), and only then reads them. FileError naming `source`, the tensor and the values on the first problem.
// Whether a Llama tensor is the weight of a linear layer (which the model packs as a PackedWeight, and so can
// take as the file stores it: a block type, f16 or bf16), or the embedding table (the tied LM head); the norms
// are read as f32.
bool is_llama_linear_weight(const std::string& name);

WeightMap read_weights(const SourceMap& sources, const std::vector<ExpectedTensor>& expected,
                       const std::string& source);

// Rejects a value outside [low, high], naming `what`; returns it converted.
int64_t checked_range(int64_t value, int64_t low, int64_t high, const std::string& what, const std::string& source);

}  // namespace jagged::io
