// The state behind a Python jagged.Model: one decoder or encoder, its tokenizer, and whether it was closed.
// Calls copy the shared_ptr before releasing the GIL, so close() from another thread never frees a model in use.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <vector>

#include "jagged/bert.h"
#include "jagged/llama.h"
#include "jagged/nested_tensor.h"
#include "jagged/tokenizer.h"

namespace jagged::python {

struct LoadedModel {
  std::string spec;
  std::string family;                    // "llama" or "bert"
  std::unique_ptr<LlamaModel> llama;     // decoders
  std::unique_ptr<BertModel> bert;       // encoders
  std::shared_ptr<Tokenizer> tokenizer;  // may be null (synthetic models, directories without one)
  int64_t vocab_size() const { return llama ? llama->config().vocab_size : bert->config().vocab_size; }
};

class PyModel {
 public:
  explicit PyModel(std::shared_ptr<LoadedModel> model) : model_(std::move(model)) {}
  // The model, or ValueError when closed.
  std::shared_ptr<LoadedModel> get() const;
  std::shared_ptr<LoadedModel> get_decoder(const char* method) const;
  void close() { model_.reset(); }
  bool closed() const { return model_ == nullptr; }

 private:
  std::shared_ptr<LoadedModel> model_;
};

// A batch of token sequences from Python: a jagged.NestedTensor of int32 ids, a list of strings (encoded with the
// model's tokenizer, specials added), or a list of id sequences. Ids are checked against the vocabulary.
NestedTensor token_batch(const LoadedModel& model, pybind11::handle batch);
// Each prompt's ids: strings encoded (specials added); an empty encoding starts from BOS.
std::vector<std::vector<int32_t>> prompt_ids(const LoadedModel& model, pybind11::handle prompts);

void bind_generate(pybind11::class_<PyModel>& model_class);  // generate.cpp

}  // namespace jagged::python
