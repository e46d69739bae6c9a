// Byte-level BPE (GPT-2, Llama 3, Qwen2): added tokens split out, optional NFC, the regex pre-tokenizer, each
// piece's bytes mapped to GPT-2's printable byte alphabet, then merges applied lowest rank first (leftmost on
// ties), as Hugging Face tokenizers and llama.cpp's llm_tokenizer_bpe do. Vocabularies: tokenizer.json, GGUF
// "gpt2".
#include <array>
#include <nlohmann/json.hpp>

#include "io/gguf.h"
#include "io/tokenizer_merges.h"
#include "io/tokenizer_pretokenize.h"
#include "io/tokenizer_vocab.h"
#include "io/unicode.h"
#include "jagged/error.h"

namespace jagged::io {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the others for U+0100 onwards.
std::array<char32_t, 256> byte_to_code_point() {
  std::array<char32_t, 256> table{};
  char32_t next = 256;
  for (uint32_t byte = 0; byte < 256; ++byte) {
    const bool printable = (byte >= 0x21 && byte <= 0x7E) || (byte >= 0xA1 && byte <= 0xAC) || byte >= 0xAE;
    table[byte] = printable ? byte : next++;
  }
  return table;
}

struct BpeConfig {
  PreTokenizer pre = PreTokenizer::gpt2;
  bool ignore_merges = false;     // a whole pre-token found in the vocabulary is taken as is (Llama 3)
  bool add_prefix_space = false;  // ByteLevel's option: a space before text that does not start with one
  bool nfc = false;               // Qwen's normalizer
};

class BpeTokenizer final : public VocabTokenizer {
 public:
  BpeTokenizer(Vocabulary vocab, AddedTokens added, const std::vector<std::pair<std::string, std::string>>& merges,
               BpeConfig config, const fs::path& path)
      : config_(config) {
    vocab_ = std::move(vocab);
    added_ = std::move(added);
    const std::array<char32_t, 256> table = byte_to_code_point();
    code_point_bytes_.fill(-1);
    for (size_t byte = 0; byte < 256; ++byte) {
      std::string text;
      unicode::append_utf8(text, table[byte]);
      byte_strings_[byte] = text;
      byte_ids_[byte] = vocab_.find(text);
      code_point_bytes_[table[byte]] = static_cast<int16_t>(byte);
    }
    merges_.reserve(merges.size());
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const auto& [left, right] = merges[rank];
      const int32_t left_id = vocab_.find(left);
      const int32_t right_id = vocab_.find(right);
      const int32_t merged_id = vocab_.find(left + right);
      if (left_id < 0 || right_id < 0 || merged_id < 0) {
        const std::string& missing = left_id < 0 ? left : right_id < 0 ? right : left + right;
        throw FileError(concat(path.string(), ": merge ", rank, " ('", left, "' '", right,
                               "') names a token that is not in the vocabulary ('", missing, "')"));
      }
      merges_.add(left_id, right_id, merged_id, static_cast<int32_t>(rank));
    }
  }

  std::string kind() const override { return "bpe"; }

  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const override {
    std::vector<int32_t> ids;
    const bool add_eos = add_special && vocab_.add_eos && vocab_.eos >= 0;
    if (add_special && vocab_.add_bos && vocab_.bos >= 0) ids.push_back(vocab_.bos);
    for (const Fragment& fragment : added_.split(text, parse_special)) {
      if (fragment.token >= 0) ids.push_back(fragment.token);
      else encode_text(fragment.text, ids);
    }
    if (add_eos) ids.push_back(vocab_.eos);
    truncate(ids, add_eos);
    return ids;
  }

  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string text;
    for (const int32_t id : ids) {
      vocab_.check_id(id, "decode");
      append_token_text(id, text);
    }
    return text;
  }

  std::string decode_token(int32_t /*previous*/, int32_t id) const override {
    vocab_.check_id(id, "decode_token");
    std::string text;
    append_token_text(id, text);
    return text;
  }

 private:
  void encode_text(std::string_view text, std::vector<int32_t>& ids) const {
    std::string buffer;
    if (config_.nfc && unicode::is_valid_utf8(text)) {  // invalid bytes are kept as they are, unnormalised
      buffer = unicode::to_utf8(unicode::nfc(unicode::to_code_points(text)));
      text = buffer;
    }
    if (config_.add_prefix_space && !text.empty() && text[0] != ' ') {
      std::string prefixed(1, ' ');
      prefixed.append(text);
      buffer = std::move(prefixed);
      text = buffer;
    }
    for (const auto& [begin, end] : pre_tokenize(text, config_.pre)) encode_word(text.substr(begin, end - begin), ids);
  }

  void encode_word(std::string_view word, std::vector<int32_t>& ids) const {
    if (word.size() == 1) {
      if (byte_ids_[static_cast<uint8_t>(word[0])] >= 0) ids.push_back(byte_ids_[static_cast<uint8_t>(word[0])]);
      return;
    }
    if (config_.ignore_merges) {
      std::string mapped;
      for (const char byte : word) mapped += byte_strings_[static_cast<uint8_t>(byte)];
      if (const int32_t id = vocab_.find(mapped); id >= 0) {
        ids.push_back(id);
        return;
      }
    }
    std::vector<int32_t> symbols(word.size());
    for (size_t i = 0; i < word.size(); ++i) symbols[i] = byte_ids_[static_cast<uint8_t>(word[i])];
    merges_.apply(symbols);
    for (const int32_t id : symbols) {
      if (id >= 0) ids.push_back(id);  // a byte the vocabulary lacks emits nothing
    }
  }

  void append_token_text(int32_t id, std::string& out) const {
    const std::string& stored = vocab_.pieces[static_cast<size_t>(id)];
    switch (vocab_.kinds[static_cast<size_t>(id)]) {
      case TokenKind::control:
      case TokenKind::unknown:
        return;
      case TokenKind::user_defined:
        out += stored;
        return;
      default:
        break;
    }
    for (size_t offset = 0; offset < stored.size();) {
      const unicode::Decoded decoded = unicode::decode_utf8(stored, offset);
      const int byte = decoded.code_point < code_point_bytes_.size() ? code_point_bytes_[decoded.code_point] : -1;
      if (byte >= 0) out.push_back(static_cast<char>(byte));
      else out.append(stored, offset, decoded.length);  // not a byte-level character: kept as written
      offset += decoded.length;
    }
  }

  BpeConfig config_;
  RankedMerges merges_;
  std::array<int32_t, 256> byte_ids_{};         // byte -> id of its byte-level character (-1 when absent)
  std::array<std::string, 256> byte_strings_;   // byte -> its byte-level character, UTF-8
  std::array<int16_t, 324> code_point_bytes_{}; // byte-level character -> byte (-1 for others)
};

PreTokenizer pre_tokenizer_from_regex(const std::string& regex, const fs::path& path) {
  for (const PreTokenizer kind : {PreTokenizer::gpt2, PreTokenizer::llama3, PreTokenizer::qwen2}) {
    if (regex == pre_tokenizer_regex(kind)) return kind;
  }
  throw FileError(concat(path.string(), ": pre-tokenizer regex '", regex,
                         "' is not supported (GPT-2, Llama 3 and Qwen2 regexes are)"));
}

}  // namespace

std::unique_ptr<VocabTokenizer> load_bpe_gguf(const GgufFile& file) {
  const fs::path& path = file.path();
  Vocabulary vocab = read_gguf_vocab(file);
  const std::vector<std::string> merge_strings = file.get("tokenizer.ggml.merges").as_strings("tokenizer.ggml.merges");
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(merge_strings.size());
  for (size_t rank = 0; rank < merge_strings.size(); ++rank) merges.push_back(split_merge(merge_strings[rank], rank, path));

  const GgufValue* pre_value = file.find("tokenizer.ggml.pre");
  const std::string pre = pre_value == nullptr ? "" : pre_value->as_string("tokenizer.ggml.pre");
  BpeConfig config;
  if (pre == "gpt-2" || pre == "gpt2" || pre == "phi-2" || pre == "mpt" || pre == "olmo" || pre == "jais") {
    config.pre = PreTokenizer::gpt2;
  } else if (pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe" || pre == "dbrx" || pre == "smaug-bpe") {
    config.pre = PreTokenizer::llama3;
    config.ignore_merges = true;
  } else if (pre == "qwen2" || pre == "stablelm2" || pre == "megrez" || pre == "deepseek-r1-qwen") {
    config.pre = PreTokenizer::qwen2;
  } else {
    throw FileError(concat(path.string(), ": tokenizer.ggml.pre '", pre,
                           "' is not supported (gpt-2, llama-bpe / llama3, qwen2 and their aliases are)"));
  }
  read_gguf_special_ids(file, path, vocab);
  // llama.cpp's defaults: Llama 3 adds BOS unless the file says otherwise.
  const GgufValue* add_bos = file.find("tokenizer.ggml.add_bos_token");
  vocab.add_bos = add_bos ? add_bos->as_bool("tokenizer.ggml.add_bos_token") : config.pre == PreTokenizer::llama3;
  const GgufValue* add_eos = file.find("tokenizer.ggml.add_eos_token");
  vocab.add_eos = add_eos ? add_eos->as_bool("tokenizer.ggml.add_eos_token") : false;
  AddedTokens added;
  added.add_from(vocab);
  return std::make_unique<BpeTokenizer>(std::move(vocab), std::move(added), merges, config, path);
}

namespace {

// Whether the pre-tokenizer or the decoder is ByteLevel (alone or in a Sequence): GPT-2-style files. The others
// are SentencePiece conversions (Metaspace / Prepend + Replace, byte fallback).
bool uses_byte_level(const json& root) {
  for (const auto& [key, list_key] : {std::pair{"pre_tokenizer", "pretokenizers"}, {"decoder", "decoders"}}) {
    const json& stage = root.value(key, json());
    if (!stage.is_object()) continue;
    if (stage.value("type", "") == "ByteLevel") return true;
    if (stage.contains(list_key) && stage[list_key].is_array()) {
      for (const json& step : stage[list_key]) {
        if (step.is_object() && step.value("type", "") == "ByteLevel") return true;
      }
    }
  }
  return false;
}

}  // namespace

std::unique_ptr<VocabTokenizer> load_bpe_json(const json& root, const fs::path& path) {
  if (!uses_byte_level(root)) return load_sentencepiece_bpe_json(root, path);
  const json& model = root["model"];
  for (const char* field : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(field) && model[field].is_string() && !model[field].get<std::string>().empty()) {
      throw FileError(concat(path.string(), ": BPE with a ", field, " is not supported"));
    }
  }
  BpeConfig config;
  config.ignore_merges = model.value("ignore_merges", false);

  // Normalizer: none, or NFC (alone or in a Sequence).
  const json& normalizer = root.value("normalizer", json());
  std::vector<json> normalizers;
  if (normalizer.is_object() && normalizer.value("type", "") == "Sequence") {
    normalizers = normalizer.value("normalizers", json::array()).get<std::vector<json>>();
  } else if (!normalizer.is_null()) {
    normalizers.push_back(normalizer);
  }
  for (const json& step : normalizers) {
    const std::string type = step.value("type", "");
    if (type != "NFC") throw FileError(concat(path.string(), ": BPE normalizer '", type, "' is not supported (NFC is)"));
    config.nfc = true;
  }

  // Pre-tokenizer: [Split(known regex)] + ByteLevel, or ByteLevel alone with its GPT-2 regex.
  const json& pre = root.value("pre_tokenizer", json());
  std::vector<json> steps;
  if (pre.is_object() && pre.value("type", "") == "Sequence") steps = pre.value("pretokenizers", json::array()).get<std::vector<json>>();
  else if (!pre.is_null()) steps.push_back(pre);
  bool byte_level = false;
  bool have_split = false;
  for (const json& step : steps) {
    const std::string type = step.value("type", "");
    if (type == "Split") {
      const json& pattern = step.value("pattern", json::object());
      if (!pattern.contains("Regex") || step.value("behavior", "") != "Isolated" || step.value("invert", false)) {
        throw FileError(concat(path.string(), ": only Split pre-tokenizers with an isolating Regex are supported"));
      }
      config.pre = pre_tokenizer_from_regex(pattern["Regex"].get<std::string>(), path);
      have_split = true;
    } else if (type == "ByteLevel") {
      byte_level = true;
      config.add_prefix_space = step.value("add_prefix_space", false);
      if (step.value("use_regex", true)) {
        if (have_split) throw FileError(concat(path.string(), ": a Split followed by a ByteLevel regex is not supported"));
        config.pre = PreTokenizer::gpt2;
        have_split = true;
      }
    } else {
      throw FileError(concat(path.string(), ": pre-tokenizer '", type, "' is not supported (Split, ByteLevel are)"));
    }
  }
  if (!byte_level) {
    throw FileError(concat(path.string(), ": BPE without a ByteLevel pre-tokenizer (SentencePiece-style tokenizer.json) "
                           "is not supported; use the model's GGUF or llama2.c tokenizer"));
  }

  Vocabulary vocab;
  AddedTokens added;
  static const json missing;
  read_json_vocab(model.contains("vocab") ? model["vocab"] : missing, root, path, vocab, added);
  const PostProcessor post = read_json_post_processor(root, vocab);
  if (post.first >= 0) {
    vocab.bos = post.first;
    vocab.add_bos = true;
  }
  if (post.last >= 0) {
    vocab.eos = post.last;
    vocab.add_eos = true;
  }
  const std::vector<std::pair<std::string, std::string>> merges = read_json_merges(model, path);
  return std::make_unique<BpeTokenizer>(std::move(vocab), std::move(added), merges, config, path);
}

}  // namespace jagged::io
