// Loading models from files: the loaders (src/io) read the files into a config + canonical weights, and the
// model (src/models) is built from those; neither knows the other.
#include "io/model_loader.h"
#include "jagged/model_files.h"

namespace jagged {

std::string model_architecture(const std::filesystem::path& path) { return io::detect_architecture(path); }

LlamaModel load_llama_model(const std::filesystem::path& path, ops::WeightType weight_type) {
  const std::string architecture = io::detect_architecture(path);
  if (architecture != "llama") {
    throw FileError(concat(path.string(), ": architecture '", architecture, "' is not a Llama-family decoder"));
  }
  io::LoadedLlama loaded = io::load_llama(path);
  try {
    return LlamaModel(loaded.config, std::move(loaded.weights), weight_type);
  } catch (const InvalidArgument& error) {
    throw FileError(concat(path.string(), ": ", error.what()));
  }
}

}  // namespace jagged
