#include "io/model_loader.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "io/gguf_model.h"
#include "io/hf_config.h"
#include "io/llama2c.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "jagged/error.h"

namespace jagged::io {
namespace fs = std::filesystem;
namespace {

constexpr uint64_t kMaxJsonBytes = uint64_t{64} << 20;

std::string read_json_text(const fs::path& path) {
  const std::shared_ptr<MappedFile> file = MappedFile::open(path);
  if (file->size() > kMaxJsonBytes) {
    throw FileError(concat(path.string(), ": ", file->size(), " bytes is too large for a JSON config"));
  }
  return std::string(reinterpret_cast<const char*>(file->bytes().data()), file->size());
}

using NameMapper = std::optional<std::string> (*)(const std::string&);

// keep_stored(name): the tensor is handed over in the file's type (f16/bf16 kept until packing), else as f32.
void add_safetensors(const std::shared_ptr<const SafetensorsFile>& file, const SafetensorsTensorInfo& info,
                     NameMapper canonical_name, const char* family, bool (*keep_stored)(const std::string&),
                     SourceMap& sources) {
  const std::optional<std::string> name = canonical_name(info.name);
  if (!name) {
    throw FileError(concat(file->path().string(), ": unexpected tensor ", info.name, " (not a ", family,
                           " tensor name this loader knows)"));
  }
  if (name->empty()) return;  // known and unused
  const SafetensorsTensorInfo* entry = &info;  // lives as long as the file the lambdas share
  SourceTensor tensor{concat(info.name, " in ", file->path().string(), " as ", info.dtype, " ", shape_string(info.shape)),
                      info.shape, [file, entry] { file->check_readable(*entry); },
                      [file, entry, keep = keep_stored(*name)] {
                        return keep ? file->read_stored(*entry) : file->read_f32(*entry);
                      }};
  if (!sources.emplace(*name, std::move(tensor)).second) {
    throw FileError(concat(file->path().string(), ": tensor ", info.name, " maps to ", *name,
                           ", which another tensor already provides (", sources.at(*name).origin, ")"));
  }
}

// model.safetensors, or the shards that model.safetensors.index.json lists, as canonical-named sources.
SourceMap huggingface_sources(const fs::path& directory, NameMapper canonical_name, const char* family,
                              bool (*keep_stored)(const std::string&)) {
  SourceMap sources;
  const fs::path single = directory / "model.safetensors";
  if (fs::exists(single)) {
    const auto file = std::make_shared<const SafetensorsFile>(SafetensorsFile::open(single));
    for (const SafetensorsTensorInfo& info : file->tensors()) {
      add_safetensors(file, info, canonical_name, family, keep_stored, sources);
    }
    return sources;
  }
  const fs::path index_path = directory / "model.safetensors.index.json";
  if (!fs::exists(index_path)) {
    throw FileError(concat(directory.string(), ": neither model.safetensors nor model.safetensors.index.json "
                                               "(only safetensors weights are supported)"));
  }
  const std::string text = read_json_text(index_path);
  const nlohmann::json index = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  const std::string index_name = index_path.string();
  if (index.is_discarded() || !index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    throw FileError(concat(index_name, ": not a JSON object with a \"weight_map\" object"));
  }
  std::map<std::string, std::vector<std::string>> tensors_by_shard;
  for (const auto& [tensor, shard] : index["weight_map"].items()) {
    if (!shard.is_string()) throw FileError(concat(index_name, ": the shard of ", tensor, " is not a file name"));
    const std::string shard_name = shard.get<std::string>();
    // A shard is a plain file name inside the model directory: no paths out of it.
    if (shard_name.empty() || shard_name.find('/') != std::string::npos || shard_name == "." || shard_name == "..") {
      throw FileError(concat(index_name, ": shard \"", shard_name, "\" of ", tensor, " is not a plain file name"));
    }
    tensors_by_shard[shard_name].push_back(tensor);
  }
  for (const auto& [shard_name, tensor_names] : tensors_by_shard) {
    const auto file = std::make_shared<const SafetensorsFile>(SafetensorsFile::open(directory / shard_name));
    for (const std::string& tensor : tensor_names) {
      const SafetensorsTensorInfo* info = file->find_tensor(tensor);
      if (info == nullptr) {
        throw FileError(concat(index_name, ": lists ", tensor, " in ", shard_name, ", which does not hold it"));
      }
      add_safetensors(file, *info, canonical_name, family, keep_stored, sources);
    }
  }
  return sources;
}

LoadedLlama load_llama_huggingface(const fs::path& directory) {
  const fs::path config_path = directory / "config.json";
  LlamaConfig config = parse_hf_llama_config(read_json_text(config_path), config_path.string());
  SourceMap sources = huggingface_sources(directory, hf_llama_tensor_name, "Llama-family", is_llama_linear_weight);
  if (sources.count("output.weight") == 0) config.tied_output = true;  // no lm_head: tied, whatever the config says
  if (config.tied_output) sources.erase("output.weight");            // tied: the copy HF may save is redundant
  LoadedLlama loaded;
  loaded.weights = read_weights(sources, expected_llama_tensors(config), directory.string());
  loaded.config = config;
  return loaded;
}

LoadedBert load_bert_huggingface(const fs::path& directory) {
  const fs::path config_path = directory / "config.json";
  BertConfig config = parse_hf_bert_config(read_json_text(config_path), config_path.string());
  const auto widen_all = [](const std::string&) { return false; };  // BERT reads every tensor as f32
  const SourceMap sources = huggingface_sources(directory, hf_bert_tensor_name, "BERT", widen_all);
  if (sources.count("cls.weight") == 0) {
    config.num_labels = 0;
    config.labels.clear();
  }
  // The classifier reads the pooled [CLS] row, so it needs the pooler; a bare encoder may come with or without it.
  const bool with_pooler = sources.count("cls.pooler.weight") > 0 || config.num_labels > 0;
  LoadedBert loaded;
  loaded.weights = read_weights(sources, expected_bert_tensors(config, with_pooler), directory.string());
  loaded.config = config;
  return loaded;
}

std::shared_ptr<const GgufFile> open_gguf(const fs::path& path) {
  return std::make_shared<const GgufFile>(GgufFile::open(path));
}

}  // namespace

ModelFormat detect_format(const fs::path& path) {
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (!fs::exists(status)) throw FileError(concat(path.string(), ": no such file or directory"));
  if (fs::is_directory(status)) {
    if (fs::exists(path / "config.json")) return ModelFormat::huggingface;
    throw FileError(concat(path.string(), ": a directory without config.json (expected a Hugging Face model "
                                          "directory, a .gguf file or a llama2.c checkpoint)"));
  }
  const std::string extension = path.extension().string();
  if (extension == ".safetensors" || extension == ".json") {
    throw FileError(concat(path.string(), ": pass the Hugging Face model directory (with config.json), not one of "
                                          "its files"));
  }
  // A FIFO or device would block or never end; MappedFile refuses them too, but only after this read.
  if (!fs::is_regular_file(status)) throw FileError(concat(path.string(), ": not a regular file"));
  // A .gguf whose magic is wrong is a broken GGUF, reported as such by the GGUF reader, not a llama2.c header.
  if (extension == ".gguf") return ModelFormat::gguf;
  std::ifstream stream(path, std::ios::binary);
  if (!stream) throw FileError(concat(path.string(), ": cannot open"));
  char magic[4] = {};
  stream.read(magic, sizeof(magic));
  if (stream.gcount() == 4 && std::string_view(magic, 4) == "GGUF") return ModelFormat::gguf;
  return ModelFormat::llama2c;
}

std::string detect_architecture(const fs::path& path) {
  switch (detect_format(path)) {
    case ModelFormat::huggingface: {
      const fs::path config_path = path / "config.json";
      return hf_architecture(read_json_text(config_path), config_path.string());
    }
    case ModelFormat::gguf: return gguf_family(GgufFile::open(path));
    case ModelFormat::llama2c: return "llama";
  }
  throw FileError(concat(path.string(), ": unknown format"));
}

LoadedLlama load_llama(const fs::path& path) {
  switch (detect_format(path)) {
    case ModelFormat::huggingface: return load_llama_huggingface(path);
    case ModelFormat::gguf: return load_llama_gguf(open_gguf(path));
    case ModelFormat::llama2c: return load_llama2c(path);
  }
  throw FileError(concat(path.string(), ": unknown format"));
}

LoadedBert load_bert(const fs::path& path) {
  switch (detect_format(path)) {
    case ModelFormat::huggingface: return load_bert_huggingface(path);
    case ModelFormat::gguf: return load_bert_gguf(open_gguf(path));
    case ModelFormat::llama2c:
      throw FileError(concat(path.string(), ": a llama2.c checkpoint holds a Llama model, not a BERT one"));
  }
  throw FileError(concat(path.string(), ": unknown format"));
}

}  // namespace jagged::io
