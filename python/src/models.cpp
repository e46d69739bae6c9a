// jagged.load and jagged.Model: every format and family the CLI opens (jagged/model_spec.h), forward in either
// layout, and the encoders' embed / classify. Compute runs without the GIL.
#include "models.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "arrays.h"
#include "bindings.h"
#include "jagged/error.h"
#include "jagged/model_spec.h"
#include "jagged/ops.h"
#include "jagged/pooling.h"
#include "nested.h"

namespace jagged::python {

namespace py = pybind11;

std::shared_ptr<LoadedModel> PyModel::get() const {
  if (model_ == nullptr) throw InvalidArgument("the model is closed");
  return model_;
}

std::shared_ptr<LoadedModel> PyModel::get_decoder(const char* method) const {
  std::shared_ptr<LoadedModel> model = get();
  if (model->llama == nullptr) {
    throw InvalidArgument(concat(method, "() needs a decoder; ", model->spec, " is a ", model->family, " encoder"));
  }
  return model;
}

std::string path_string(const py::object& path) {
  return py::str(py::module_::import("os").attr("fspath")(path));
}

namespace {

NestedTensor pack(const std::vector<std::vector<int32_t>>& sequences) {
  std::vector<int64_t> lengths;
  for (const auto& ids : sequences) lengths.push_back(static_cast<int64_t>(ids.size()));
  NestedTensor batch = NestedTensor::from_lengths(lengths, {}, DType::i32);
  int32_t* out = batch.values().data<int32_t>();
  for (const auto& ids : sequences) out = std::copy(ids.begin(), ids.end(), out);
  return batch;
}

const Tokenizer& require_tokenizer(const LoadedModel& model) {
  if (model.tokenizer == nullptr) {
    throw InvalidArgument(concat(model.spec, " has no tokenizer: pass token ids, or jagged.load(..., tokenizer=PATH)"));
  }
  return *model.tokenizer;
}

std::vector<std::vector<int32_t>> sequences_of(const LoadedModel& model, const py::sequence& batch) {
  std::vector<std::vector<int32_t>> sequences;
  for (size_t i = 0; i < batch.size(); ++i) {
    const py::object item = batch[i];
    if (py::isinstance<py::str>(item)) {
      sequences.push_back(require_tokenizer(model).encode(item.cast<std::string>(), /*add_special=*/true));
    } else {
      sequences.push_back(to_token_ids(item, model.vocab_size(), concat("sequence ", i)));
    }
  }
  return sequences;
}

py::sequence as_list(py::handle batch, const char* what) {
  if (py::isinstance<py::str>(batch) || !py::isinstance<py::sequence>(batch)) {
    throw InvalidArgument(
        concat(what, ": expected a list (of strings or of token-id sequences) or a jagged.NestedTensor"));
  }
  return py::reinterpret_borrow<py::sequence>(batch);
}

BatchLayout parse_layout(const std::string& layout) {
  if (layout == "nested") return BatchLayout::nested;
  if (layout == "padded") return BatchLayout::padded;
  throw InvalidArgument(concat("layout must be 'nested' or 'padded', got '", layout, "'"));
}

py::dict config_dict(const LoadedModel& model) {
  py::dict config;
  config["family"] = model.family;
  if (model.llama) {
    const LlamaConfig& c = model.llama->config();
    config["model_dim"] = c.model_dim;
    config["ffn_dim"] = c.ffn_dim;
    config["num_layers"] = c.num_layers;
    config["num_heads"] = c.num_heads;
    config["num_kv_heads"] = c.num_kv_heads;
    config["head_dim"] = c.head_dim;
    config["vocab_size"] = c.vocab_size;
    config["context_length"] = c.context_length;
    config["rope_theta"] = c.rope_theta;
    config["norm_eps"] = c.norm_eps;
    config["tied_output"] = c.tied_output;
    config["qkv_bias"] = c.qkv_bias;
    config["bos_id"] = c.bos_id;
    config["eos_id"] = c.eos_id;
    config["parameters"] = model.llama->parameter_count();
  } else {
    const BertConfig& c = model.bert->config();
    config["model_dim"] = c.model_dim;
    config["ffn_dim"] = c.ffn_dim;
    config["num_layers"] = c.num_layers;
    config["num_heads"] = c.num_heads;
    config["vocab_size"] = c.vocab_size;
    config["context_length"] = c.context_length;
    config["type_vocab_size"] = c.type_vocab_size;
    config["norm_eps"] = c.norm_eps;
    config["pre_norm"] = c.pre_norm;
    config["num_labels"] = c.num_labels;
    config["labels"] = c.labels;
    config["parameters"] = model.bert->parameter_count();
  }
  return config;
}

// The weights' storage type (ops::WeightType's name) from load's dtype: None or float32 (numpy's, or the string)
// keeps f32; "bf16"/"bfloat16" and "q8_0" as --dtype takes them. Activations are float32 whatever the weights.
std::string weight_type_name_of(const py::object& dtype) {
  if (dtype.is_none()) return "f32";
  if (py::isinstance<py::str>(dtype)) {
    const std::string name = dtype.cast<std::string>();
    if (name == "float32") return "f32";
    if (name == "bfloat16") return "bf16";
    ops::parse_weight_type(name);  // InvalidArgument naming the choices
    return name;
  }
  const std::string name = py::str(py::module_::import("numpy").attr("dtype")(dtype));
  if (name != "float32") {
    throw InvalidArgument(concat("dtype ", name, " is not a weight type: use None or float32, \"bf16\" or \"q8_0\""));
  }
  return "f32";
}

PyModel load_model(const py::object& path_or_spec, const py::object& dtype,
                                        const py::object& tokenizer_path) {
  const std::string weight_type = weight_type_name_of(dtype);
  auto model = std::make_shared<LoadedModel>();
  model->spec = path_string(path_or_spec);
  const std::string tokenizer = tokenizer_path.is_none() ? std::string() : path_string(tokenizer_path);
  py::gil_scoped_release release;
  model->family = model_family(model->spec);
  if (model->family == "llama") {
    model->llama = std::make_unique<LlamaModel>(open_llama_model(model->spec, weight_type));
  } else {
    model->bert = std::make_unique<BertModel>(open_bert_model(model->spec, weight_type));
  }
  model->tokenizer = tokenizer.empty() ? find_model_tokenizer(model->spec, model->vocab_size())
                                       : open_model_tokenizer(model->spec, tokenizer, model->vocab_size());
  return PyModel(std::move(model));
}

// Runs `body(batch)` on consecutive nested batches of at most batch_size sequences without the GIL, and stacks
// the [rows, width] results. The model is batch invariant, so the split never changes a result.
template <typename Body>
py::array per_batch(const NestedTensor& all, int64_t batch_size, int64_t width, const Body& body) {
  if (batch_size <= 0) throw InvalidArgument(concat("batch_size must be positive, got ", batch_size));
  Tensor out(Shape{all.num_seqs(), width});
  {
    py::gil_scoped_release release;
    const std::span<const int32_t> offsets = all.cu_seqlens();
    for (int64_t first = 0; first < all.num_seqs(); first += batch_size) {
      const int64_t end = std::min(all.num_seqs(), first + batch_size);
      std::vector<int32_t> cu_seqlens;
      for (int64_t seq = first; seq <= end; ++seq) cu_seqlens.push_back(offsets[seq] - offsets[first]);
      const int64_t rows = offsets[end] - offsets[first];
      Tensor ids(Shape{rows}, DType::i32);
      std::copy_n(all.values().data<int32_t>() + offsets[first], rows, ids.data<int32_t>());
      const Tensor result = body(NestedTensor(std::move(ids), std::move(cu_seqlens)));
      std::copy_n(result.data<float>(), result.numel(), out.data<float>() + first * width);
    }
  }
  return to_numpy(std::move(out));
}

py::object forward(const PyModel& self, py::handle batch_arg, const std::string& layout, const std::string& logits) {
  const std::shared_ptr<LoadedModel> model = self.get();
  if (logits != "all" && logits != "last") {
    throw InvalidArgument(concat("logits must be 'all' or 'last', got '", logits, "'"));
  }
  if (model->bert && logits != "all") {
    throw InvalidArgument("logits='last' is for decoders; an encoder's forward returns every token's hidden state");
  }
  const NestedTensor batch = token_batch(*model, batch_arg);
  const ForwardOptions options{parse_layout(layout), logits == "last", nullptr};
  Tensor output;
  {
    py::gil_scoped_release release;
    output = model->llama ? model->llama->forward(batch, options) : model->bert->forward(batch, options);
  }
  if (logits == "last") return to_numpy(std::move(output));
  std::vector<int32_t> offsets(batch.cu_seqlens().begin(), batch.cu_seqlens().end());
  return py::cast(PyNestedTensor{NestedTensor(std::move(output), std::move(offsets)), false});
}

std::shared_ptr<LoadedModel> get_encoder(const PyModel& self, const char* method) {
  std::shared_ptr<LoadedModel> model = self.get();
  if (model->bert == nullptr) {
    throw InvalidArgument(concat(method, "() needs an encoder; ", model->spec, " is a ", model->family, " decoder"));
  }
  return model;
}

py::array embed(const PyModel& self, py::handle texts, const std::string& pool, bool normalize, int64_t batch_size) {
  const std::shared_ptr<LoadedModel> model = get_encoder(self, "embed");
  const Pooling pooling = parse_pooling(pool);
  const NestedTensor batch = token_batch(*model, texts);
  const BertModel& bert = *model->bert;
  return per_batch(batch, batch_size, bert.config().model_dim,
                   [&](const NestedTensor& part) { return bert.embed(part, pooling, normalize); });
}

py::array classify(const PyModel& self, py::handle texts, int64_t batch_size) {
  const std::shared_ptr<LoadedModel> model = get_encoder(self, "classify");
  const BertModel& bert = *model->bert;
  if (!bert.has_classifier()) {
    throw InvalidArgument(concat(model->spec, " has no sequence-classification head (num_labels is 0): use embed"));
  }
  const NestedTensor batch = token_batch(*model, texts);
  return per_batch(batch, batch_size, bert.config().num_labels,
                   [&](const NestedTensor& part) { return bert.classify(part); });
}

}  // namespace

NestedTensor token_batch(const LoadedModel& model, py::handle batch) {
  if (py::isinstance<PyNestedTensor>(batch)) {
    const NestedTensor& given = batch.cast<const PyNestedTensor&>().tensor;
    if (given.dtype() != DType::i32 || !given.inner_shape().empty()) {
      throw InvalidArgument(concat("a batch of token ids is a NestedTensor of int32 values [num_tokens], got ",
                                   dtype_name(given.dtype()), " with inner shape ", shape_string(given.inner_shape())));
    }
    // A copy: the model validates the ids; the caller may write the original's values from another thread.
    return given.clone();
  }
  return pack(sequences_of(model, as_list(batch, "batch")));
}

std::vector<std::vector<int32_t>> prompt_ids(const LoadedModel& model, py::handle prompts) {
  std::vector<std::vector<int32_t>> sequences = sequences_of(model, as_list(prompts, "prompts"));
  for (auto& ids : sequences) {
    if (ids.empty()) ids.push_back(model.llama->config().bos_id);
  }
  return sequences;
}

void bind_models(py::module_& module) {
  py::class_<PyModel> model_class(module, "Model", R"(A loaded model: a Llama-family decoder or a BERT-family encoder.

Batches are a list of strings (encoded with the model's tokenizer), a list of token-id sequences, or a
jagged.NestedTensor of int32 ids. close() frees the weights; later calls raise ValueError.)");
  model_class
      .def_property_readonly("config", [](const PyModel& self) { return config_dict(*self.get()); })
      .def_property_readonly("family", [](const PyModel& self) { return self.get()->family; })
      .def_property_readonly("tokenizer", [](const PyModel& self) { return self.get()->tokenizer; },
                             "The model's jagged.Tokenizer, or None")
      .def("forward", &forward, py::arg("batch"), py::arg("layout") = "nested", py::arg("logits") = "all",
           R"(Decoders: logits; logits="all" gives a NestedTensor [num_tokens, vocab_size] float32 (every token),
"last" an array [num_seqs, vocab_size] (each sequence's last token). Encoders: the last hidden states as a
NestedTensor [num_tokens, model_dim]. layout="padded" runs the padded formulation (same real-token outputs).)")
      .def("embed", &embed, py::arg("texts"), py::arg("pool") = "mean", py::arg("normalize") = true,
           py::arg("batch_size") = 64, "Encoders: one embedding per input, [n, model_dim] float32")
      .def("classify", &classify, py::arg("texts"), py::arg("batch_size") = 64,
           "Encoders with a classification head: logits [n, num_labels] float32 (names in config['labels'])")
      .def("close", &PyModel::close, "Frees the model; later calls raise ValueError")
      .def_property_readonly("closed", &PyModel::closed)
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](PyModel& self, py::args) { self.close(); })
      .def("__repr__", [](const PyModel& self) {
        if (self.closed()) return std::string("jagged.Model(closed)");
        const auto model = self.get();
        return concat("jagged.Model('", model->spec, "', family='", model->family, "')");
      });
  bind_generate(model_class);

  module.def("load", &load_model, py::arg("path_or_spec"), py::arg("dtype") = py::none(),
             py::arg("tokenizer") = py::none(),
             R"(Opens a model as the CLI does: a llama2.c .bin, a Hugging Face directory, a .gguf file, or
"synthetic:NAME". The tokenizer inside or beside it is opened too (tokenizer= overrides). dtype: the weights'
storage type, None or float32 (f32), "bf16" or "q8_0" (as the CLI's --dtype); activations stay float32.)");
}

}  // namespace jagged::python
