// jagged.Tokenizer: encode / decode, one text or a batch (batches run without the GIL).
#include <pybind11/stl.h>

#include <memory>

#include "arrays.h"
#include "bindings.h"
#include "jagged/error.h"
#include "jagged/tokenizer.h"

namespace jagged::python {

namespace py = pybind11;

py::str utf8_text(std::string_view bytes) {
  PyObject* text = PyUnicode_DecodeUTF8(bytes.data(), static_cast<py::ssize_t>(bytes.size()), "replace");
  if (text == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(text);
}

namespace {

std::vector<std::string> to_texts(const py::sequence& texts) {
  if (py::isinstance<py::str>(texts)) throw InvalidArgument("expected a list of strings, got one string");
  std::vector<std::string> result;
  for (size_t i = 0; i < texts.size(); ++i) {
    if (!py::isinstance<py::str>(texts[i])) {
      throw InvalidArgument(concat("text ", i, " is a ", std::string(py::str(texts[i].get_type().attr("__name__"))),
                                   ", not a str"));
    }
    result.push_back(texts[i].cast<std::string>());
  }
  return result;
}

}  // namespace

void bind_tokenizer(py::module_& module) {
  py::class_<Tokenizer, std::shared_ptr<Tokenizer>>(module, "Tokenizer",
      "A model's tokenizer (SentencePiece, byte-level BPE or WordPiece). jagged.load_tokenizer(path) opens one alone.")
      .def("encode", [](const Tokenizer& tokenizer, const std::string& text, bool add_special, bool parse_special) {
             return tokenizer.encode(text, add_special, parse_special);
           }, py::arg("text"), py::arg("add_special") = true, py::arg("parse_special") = false,
           "Token ids of text; add_special adds BOS (decoders) or [CLS] ... [SEP] (encoders) as the model does")
      .def("encode_batch", [](const Tokenizer& tokenizer, const py::sequence& texts, bool add_special,
                              bool parse_special) {
             const std::vector<std::string> inputs = to_texts(texts);
             std::vector<std::vector<int32_t>> ids;
             {
               py::gil_scoped_release release;
               for (const std::string& text : inputs) ids.push_back(tokenizer.encode(text, add_special, parse_special));
             }
             return ids;
           }, py::arg("texts"), py::arg("add_special") = true, py::arg("parse_special") = false)
      .def("decode", [](const Tokenizer& tokenizer, py::handle ids) {
             return utf8_text(tokenizer.decode(to_token_ids(ids, tokenizer.vocab_size(), "ids")));
           }, py::arg("ids"), "Text of ids, special tokens skipped (invalid UTF-8 becomes U+FFFD)")
      .def("decode_batch", [](const Tokenizer& tokenizer, const py::sequence& batch) {
             std::vector<std::vector<int32_t>> inputs;
             for (size_t i = 0; i < batch.size(); ++i) {
               inputs.push_back(to_token_ids(batch[i], tokenizer.vocab_size(), concat("sequence ", i)));
             }
             std::vector<std::string> texts;
             {
               py::gil_scoped_release release;
               for (const auto& ids : inputs) texts.push_back(tokenizer.decode(ids));
             }
             py::list result;
             for (const std::string& text : texts) result.append(utf8_text(text));
             return result;
           }, py::arg("batch"))
      .def("piece", [](const Tokenizer& tokenizer, int64_t id) {
             if (id < 0 || id >= tokenizer.vocab_size()) {
               throw InvalidArgument(
                   concat("token id ", id, " is outside the vocabulary [0, ", tokenizer.vocab_size(), ")"));
             }
             return py::bytes(tokenizer.piece(static_cast<int32_t>(id)));
           }, py::arg("id"), "The raw piece of one token as stored in the vocabulary (bytes)")
      .def("token_id", &Tokenizer::piece_id, py::arg("piece"), "The id of a piece exactly as stored, or -1")
      .def_property_readonly("vocab_size", &Tokenizer::vocab_size)
      .def_property_readonly("bos_id", &Tokenizer::bos_id)
      .def_property_readonly("eos_id", &Tokenizer::eos_id)
      .def_property_readonly("kind", &Tokenizer::kind)
      .def("__repr__", [](const Tokenizer& tokenizer) {
        return concat("jagged.Tokenizer(kind='", tokenizer.kind(), "', vocab_size=", tokenizer.vocab_size(), ")");
      });

  module.def("load_tokenizer", [](const py::object& path, int64_t vocab_size) {
               return std::shared_ptr<Tokenizer>(load_tokenizer(path_string(path), vocab_size));
             }, py::arg("path"), py::arg("vocab_size") = 0,
             "A tokenizer.json, vocab.txt, GGUF or llama2.c tokenizer .bin (vocab_size: entries of a .bin; 0: all)");
}

}  // namespace jagged::python
