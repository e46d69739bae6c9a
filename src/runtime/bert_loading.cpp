// Loading BERT-family encoders from files: the loaders (src/io) read the files into a config + canonical
// weights, and the model (src/models) is built from those; neither knows the other.
#include "io/model_loader.h"
#include "jagged/bert.h"

namespace jagged {

BertModel load_bert_model(const std::filesystem::path& path, ops::WeightType weight_type) {
  const std::string architecture = io::detect_architecture(path);
  if (architecture != "bert") {
    throw FileError(concat(path.string(), ": architecture '", architecture, "' is not a BERT-family encoder"));
  }
  io::LoadedBert loaded = io::load_bert(path);
  try {
    return BertModel(std::move(loaded.config), std::move(loaded.weights), weight_type);
  } catch (const InvalidArgument& error) {
    throw FileError(concat(path.string(), ": ", error.what()));
  }
}

}  // namespace jagged
