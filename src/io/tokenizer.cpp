// load_tokenizer: picks the format from the file, plus what all tokenizers share (vocabulary, added tokens,
// tokenizer.json helpers).
#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/gguf.h"
#include "io/tokenizer_vocab.h"
#include "io/unicode.h"
#include "jagged/error.h"

namespace jagged {
namespace io {

namespace fs = std::filesystem;
using nlohmann::json;

void Vocabulary::index() {
  kinds.resize(pieces.size(), TokenKind::normal);
  ids.clear();
  ids.reserve(pieces.size());
  for (size_t id = 0; id < pieces.size(); ++id) {
    if (!pieces[id].empty()) ids[pieces[id]] = static_cast<int32_t>(id);
  }
}

void Vocabulary::check_id(int32_t id, const char* what) const {
  if (id < 0 || id >= size()) {
    throw InvalidArgument(concat(what, ": token id ", id, " is outside the vocabulary [0, ", size(), ")"));
  }
}

void Vocabulary::check_special_id(int32_t id, const char* what, const fs::path& file) const {
  if (id < -1 || id >= size()) {
    throw FileError(concat(file.string(), ": ", what, " id ", id, " is outside the vocabulary [0, ", size(), ")"));
  }
}

Vocabulary read_gguf_vocab(const GgufFile& file) {
  Vocabulary vocab;
  vocab.pieces = file.get("tokenizer.ggml.tokens").as_strings("tokenizer.ggml.tokens");
  vocab.index();
  if (const GgufValue* value = file.find("tokenizer.ggml.token_type")) {
    const std::vector<int64_t> types = value->as_ints("tokenizer.ggml.token_type");
    if (types.size() != vocab.pieces.size()) {
      throw FileError(concat(file.path().string(), ": tokenizer.ggml.token_type has ", types.size(), " entries for ",
                             vocab.pieces.size(), " tokens"));
    }
    for (size_t i = 0; i < types.size(); ++i) {
      vocab.kinds[i] = types[i] >= 1 && types[i] <= 6 ? static_cast<TokenKind>(types[i]) : TokenKind::normal;
    }
  }
  return vocab;
}

int32_t read_gguf_token_id(const GgufFile& file, const std::string& key) {
  const GgufValue* value = file.find(key);
  return value == nullptr ? -1 : static_cast<int32_t>(std::clamp<int64_t>(value->as_int(key), -1, INT32_MAX));
}

void read_gguf_special_ids(const GgufFile& file, const std::filesystem::path& path, Vocabulary& vocab) {
  vocab.bos = read_gguf_token_id(file, "tokenizer.ggml.bos_token_id");
  vocab.eos = read_gguf_token_id(file, "tokenizer.ggml.eos_token_id");
  vocab.unk = read_gguf_token_id(file, "tokenizer.ggml.unknown_token_id");
  vocab.check_special_id(vocab.bos, "BOS", path);
  vocab.check_special_id(vocab.eos, "EOS", path);
  vocab.check_special_id(vocab.unk, "unknown-token", path);
}

void AddedTokens::add(std::string content, int32_t id, bool special, bool lstrip, bool rstrip, bool single_word) {
  if (content.empty()) return;
  const auto first = static_cast<uint8_t>(content[0]);
  entries_.push_back({std::move(content), id, special, lstrip, rstrip, single_word});
  std::vector<uint32_t>& bucket = by_first_byte_[first];
  bucket.push_back(static_cast<uint32_t>(entries_.size() - 1));
  std::stable_sort(bucket.begin(), bucket.end(),
                   [&](uint32_t a, uint32_t b) { return entries_[a].content.size() > entries_[b].content.size(); });
}

void AddedTokens::add_from(const Vocabulary& vocab) {
  for (int32_t id = 0; id < vocab.size(); ++id) {
    const TokenKind kind = vocab.kinds[static_cast<size_t>(id)];
    if (kind == TokenKind::control || kind == TokenKind::unknown || kind == TokenKind::user_defined) {
      add(vocab.pieces[static_cast<size_t>(id)], id, kind != TokenKind::user_defined);
    }
  }
}

namespace {

// Regex \w as Hugging Face's single_word check uses it: letters, marks, digits, connector punctuation.
bool is_word_character(char32_t code_point) {
  if (unicode::is_letter(code_point) || unicode::is_number(code_point)) return true;
  const unicode::Category category = unicode::category(code_point);
  return category == unicode::Category::Mn || category == unicode::Category::Mc ||
         category == unicode::Category::Me || category == unicode::Category::Pc;
}

// Whether a word character ends text[0, end) / starts text[begin, ...).
bool word_before(std::string_view text, size_t end) {
  if (end == 0) return false;
  size_t begin = end - 1;
  while (begin > 0 && end - begin < 4 && (static_cast<uint8_t>(text[begin]) & 0xC0) == 0x80) --begin;
  const unicode::Decoded decoded = unicode::decode_utf8(text, begin);
  return begin + decoded.length == end && decoded.valid && is_word_character(decoded.code_point);
}
bool word_after(std::string_view text, size_t begin) {
  if (begin >= text.size()) return false;
  const unicode::Decoded decoded = unicode::decode_utf8(text, begin);
  return decoded.valid && is_word_character(decoded.code_point);
}

}  // namespace

std::vector<Fragment> AddedTokens::split(std::string_view text, bool parse_special) const {
  std::vector<Fragment> fragments;
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
  size_t text_start = 0;
  for (size_t pos = 0; pos < text.size();) {
    const Entry* match = nullptr;
    for (const uint32_t index : by_first_byte_[static_cast<uint8_t>(text[pos])]) {
      const Entry& entry = entries_[index];
      if ((parse_special || !entry.special) && text.substr(pos).starts_with(entry.content) &&
          (!entry.single_word || (!word_before(text, pos) && !word_after(text, pos + entry.content.size())))) {
        match = &entry;
        break;
      }
    }
    if (match == nullptr) {
      ++pos;
      continue;
    }
    std::string_view left = text.substr(text_start, pos - text_start);
    if (match->lstrip) {
      while (!left.empty() && is_space(left.back())) left.remove_suffix(1);
    }
    if (!left.empty()) fragments.push_back({left, -1});
    fragments.push_back({{}, match->id});
    pos += match->content.size();
    if (match->rstrip) {
      while (pos < text.size() && is_space(text[pos])) ++pos;
    }
    text_start = pos;
  }
  if (text_start < text.size()) fragments.push_back({text.substr(text_start), -1});
  return fragments;
}

int parse_byte_piece(std::string_view piece) {
  if (piece.size() != 6 || !piece.starts_with("<0x") || piece[5] != '>') return -1;
  int value = 0;
  for (const char c : piece.substr(3, 2)) {
    value *= 16;
    if (c >= '0' && c <= '9') value += c - '0';
    else if (c >= 'A' && c <= 'F') value += c - 'A' + 10;
    else if (c >= 'a' && c <= 'f') value += c - 'a' + 10;
    else return -1;
  }
  return value;
}

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  if (from.empty() || from == to || text.find(from) == std::string::npos) return;
  std::string out;
  out.reserve(text.size());
  size_t start = 0;
  for (size_t found; (found = text.find(from, start)) != std::string::npos; start = found + from.size()) {
    out.append(text, start, found - start);
    out.append(to);
  }
  out.append(text, start);
  text = std::move(out);
}

std::string VocabTokenizer::piece(int32_t id) const {
  vocab_.check_id(id, "piece");
  return vocab_.pieces[static_cast<size_t>(id)];
}

void VocabTokenizer::truncate(std::vector<int32_t>& ids, bool keep_last) const {
  if (max_length_ <= 0 || static_cast<int64_t>(ids.size()) <= max_length_) return;
  const int32_t last = ids.back();
  ids.resize(static_cast<size_t>(max_length_));
  if (keep_last) ids.back() = last;
}

namespace {

// A JSON value that is a token: "text" or {"content": "text"} (tokenizer_config.json writes both).
std::string token_text(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content") && value["content"].is_string()) return value["content"];
  return {};
}

}  // namespace

void read_json_vocab(const json& vocab_object, const json& root, const fs::path& path, Vocabulary& vocab,
                     AddedTokens& added) {
  if (!vocab_object.is_object()) throw FileError(concat(path.string(), ": model.vocab is not an object"));
  const json empty = json::array();
  const json& added_tokens = root.contains("added_tokens") ? root["added_tokens"] : empty;
  if (!added_tokens.is_array()) throw FileError(concat(path.string(), ": added_tokens is not an array"));
  int64_t max_id = -1;
  const auto checked_id = [&](const json& value, const std::string& what) {
    if (!value.is_number_integer() || value.get<int64_t>() < 0 || value.get<int64_t>() >= (int64_t{1} << 30)) {
      throw FileError(concat(path.string(), ": ", what, " has no valid id (", value.dump(), ")"));
    }
    return value.get<int64_t>();
  };
  for (const auto& [piece, id] : vocab_object.items()) max_id = std::max(max_id, checked_id(id, "vocab entry '" + piece + "'"));
  for (const json& token : added_tokens) {
    if (!token.is_object() || !token.contains("content") || !token["content"].is_string()) {
      throw FileError(concat(path.string(), ": an added token has no content"));
    }
    max_id = std::max(max_id, checked_id(token.value("id", json()), "added token '" + token["content"].get<std::string>() + "'"));
  }
  if (max_id < 0) throw FileError(concat(path.string(), ": the vocabulary is empty"));
  // Ids are dense in real files; a huge id with few entries would only allocate a vocabulary of holes.
  const auto entries = static_cast<int64_t>(vocab_object.size() + added_tokens.size());
  if (max_id >= entries + 65536) {
    throw FileError(concat(path.string(), ": token id ", max_id, " is far beyond the ", entries, " entries"));
  }
  vocab.pieces.assign(static_cast<size_t>(max_id + 1), std::string());
  vocab.kinds.assign(static_cast<size_t>(max_id + 1), TokenKind::unused);  // ids no entry names stay unused
  for (const auto& [piece, id] : vocab_object.items()) {
    vocab.pieces[id.get<size_t>()] = piece;
    vocab.kinds[id.get<size_t>()] = TokenKind::normal;
  }
  for (const json& token : added_tokens) {
    const auto id = token["id"].get<int32_t>();
    const bool special = token.value("special", false);
    vocab.pieces[static_cast<size_t>(id)] = token["content"].get<std::string>();
    vocab.kinds[static_cast<size_t>(id)] = special ? TokenKind::control : TokenKind::user_defined;
    added.add(token["content"].get<std::string>(), id, special, token.value("lstrip", false), token.value("rstrip", false));
  }
  std::vector<TokenKind> kinds = std::move(vocab.kinds);
  vocab.index();
  vocab.kinds = std::move(kinds);

  // tokenizer_config.json beside the file names BOS / EOS and whether to add them.
  const json config = read_tokenizer_config(path);
  if (config.contains("bos_token")) vocab.bos = vocab.find(token_text(config["bos_token"]));
  if (config.contains("eos_token")) vocab.eos = vocab.find(token_text(config["eos_token"]));
  if (config.contains("unk_token") && vocab.unk < 0) vocab.unk = vocab.find(token_text(config["unk_token"]));
  if (config.contains("add_bos_token") && config["add_bos_token"].is_boolean()) vocab.add_bos = config["add_bos_token"];
  if (config.contains("add_eos_token") && config["add_eos_token"].is_boolean()) vocab.add_eos = config["add_eos_token"];
}

std::pair<std::string, std::string> split_merge(const std::string& merge, size_t rank, const fs::path& path) {
  const size_t space = merge.find(' ', 1);
  if (space == std::string::npos) {
    throw FileError(concat(path.string(), ": merge ", rank, " ('", merge, "') is not two tokens separated by a space"));
  }
  return {merge.substr(0, space), merge.substr(space + 1)};
}

std::vector<std::pair<std::string, std::string>> read_json_merges(const json& model, const fs::path& path) {
  const json& merge_list = model.value("merges", json::array());
  if (!merge_list.is_array()) throw FileError(concat(path.string(), ": model.merges is not an array"));
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(merge_list.size());
  for (size_t rank = 0; rank < merge_list.size(); ++rank) {
    const json& merge = merge_list[rank];
    if (merge.is_string()) {
      merges.push_back(split_merge(merge.get<std::string>(), rank, path));
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
      merges.emplace_back(merge[0].get<std::string>(), merge[1].get<std::string>());
    } else {
      throw FileError(concat(path.string(), ": merge ", rank, " is neither \"a b\" nor [\"a\", \"b\"]"));
    }
  }
  return merges;
}

json read_tokenizer_config(const fs::path& path) {
  std::ifstream config_file(path.parent_path() / "tokenizer_config.json");
  if (!config_file) return json::object();
  json config = json::parse(config_file, nullptr, /*allow_exceptions=*/false);
  return config.is_object() ? config : json::object();
}

PostProcessor read_json_post_processor(const json& root, const Vocabulary& vocab) {
  PostProcessor result;
  if (!root.contains("post_processor") || !root["post_processor"].is_object()) return result;
  std::vector<const json*> processors{&root["post_processor"]};
  if (root["post_processor"].value("type", "") == "Sequence" && root["post_processor"].contains("processors")) {
    processors.clear();
    for (const json& processor : root["post_processor"]["processors"]) processors.push_back(&processor);
  }
  const auto pair_id = [&](const json& pair) {  // ["[CLS]", 101]
    return pair.is_array() && pair.size() == 2 && pair[1].is_number_integer() ? pair[1].get<int32_t>() : -1;
  };
  for (const json* processor : processors) {
    if (!processor->is_object()) continue;
    const std::string type = processor->value("type", "");
    if (type == "BertProcessing" || type == "RobertaProcessing") {
      result.first = pair_id(processor->value("cls", json()));
      result.last = pair_id(processor->value("sep", json()));
    } else if (type == "TemplateProcessing" && processor->contains("single") && (*processor)["single"].is_array()) {
      bool seen_sequence = false;
      for (const json& item : (*processor)["single"]) {
        if (item.contains("Sequence")) {
          seen_sequence = true;
        } else if (item.contains("SpecialToken")) {
          const std::string name = item["SpecialToken"].value("id", "");
          int32_t id = vocab.find(name);
          const json& specials = processor->value("special_tokens", json::object());
          if (specials.contains(name) && specials[name].contains("ids") && !specials[name]["ids"].empty()) {
            id = specials[name]["ids"][0].get<int32_t>();
          }
          (seen_sequence ? result.last : result.first) = id;
        }
      }
    }
  }
  if (result.first >= vocab.size()) result.first = -1;
  if (result.last >= vocab.size()) result.last = -1;
  return result;
}

namespace {

std::string read_prefix(const fs::path& path, size_t count) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(concat(path.string(), ": cannot open the tokenizer file"));
  std::string prefix(count, '\0');
  in.read(prefix.data(), static_cast<std::streamsize>(count));
  prefix.resize(static_cast<size_t>(in.gcount()));
  return prefix;
}

std::unique_ptr<VocabTokenizer> load_json(const fs::path& path, const TokenizerOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(concat(path.string(), ": cannot open the tokenizer file"));
  json root;
  try {
    root = json::parse(in);
  } catch (const json::exception& error) {
    throw FileError(concat(path.string(), ": not valid JSON (", error.what(), ")"));
  }
  if (!root.is_object() || !root.contains("model") || !root["model"].is_object()) {
    throw FileError(concat(path.string(), ": no \"model\" object: not a Hugging Face tokenizer.json"));
  }
  std::string type;
  try {
    // A model with no "type" is BPE in old files (tokenizers < 0.11 wrote no type).
    type = root["model"].value("type", root["model"].contains("merges") ? "BPE" : "");
    if (type == "BPE") return load_bpe_json(root, path);
    if (type == "WordPiece") return load_wordpiece_json(root, path, options);
  } catch (const json::exception& error) {
    throw FileError(concat(path.string(), ": unexpected tokenizer.json structure (", error.what(), ")"));
  }
  throw FileError(concat(path.string(), ": tokenizer model type '", type,
                         "' is not supported (BPE, byte-level or SentencePiece-converted, and WordPiece are)"));
}

std::unique_ptr<VocabTokenizer> load_gguf(const fs::path& path, const TokenizerOptions& options) {
  try {
    const GgufFile file = GgufFile::open(path);
    const std::string model = file.get("tokenizer.ggml.model").as_string("tokenizer.ggml.model");
    if (model == "llama") return load_sentencepiece_gguf(file);
    if (model == "gpt2") return load_bpe_gguf(file);
    if (model == "bert") return load_wordpiece_gguf(file, options);
    throw FileError(concat(path.string(), ": tokenizer.ggml.model '", model,
                           "' is not supported (llama, gpt2 or bert)"));
  } catch (const FileError& error) {
    // GgufValue's accessors name the key, not the file.
    if (std::string_view(error.what()).find(path.string()) != std::string_view::npos) throw;
    throw FileError(concat(path.string(), ": ", error.what()));
  }
}

}  // namespace
}  // namespace io

std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& path, int64_t vocab_size) {
  TokenizerOptions options;
  options.vocab_size = vocab_size;
  return load_tokenizer(path, options);
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& path, const TokenizerOptions& options) {
  namespace fs = std::filesystem;
  if (fs::is_directory(path)) {
    for (const char* name : {"tokenizer.json", "vocab.txt", "tokenizer.bin"}) {
      if (fs::exists(path / name)) return load_tokenizer(path / name, options);
    }
    throw FileError(concat(path.string(), ": the directory holds no tokenizer.json, vocab.txt or tokenizer.bin"));
  }
  if (!fs::exists(path)) throw FileError(concat(path.string(), ": no such tokenizer file"));
  // A FIFO or device (/dev/zero) would block or be read forever.
  if (!fs::is_regular_file(path)) throw FileError(concat(path.string(), ": not a regular file"));
  if (options.vocab_size < 0) throw InvalidArgument(concat("load_tokenizer: vocab_size ", options.vocab_size, " < 0"));
  if (options.max_length < 0) throw InvalidArgument(concat("load_tokenizer: max_length ", options.max_length, " < 0"));

  const std::string prefix = io::read_prefix(path, 64);
  const size_t first_text = prefix.find_first_not_of(" \t\r\n");
  std::unique_ptr<io::VocabTokenizer> tokenizer;
  if (prefix.starts_with("GGUF") || path.extension() == ".gguf") {  // a bad magic is reported by the GGUF reader
    tokenizer = io::load_gguf(path, options);
  } else if (path.extension() == ".json") {
    tokenizer = io::load_json(path, options);
  } else if (path.extension() == ".txt") {
    tokenizer = io::load_wordpiece_vocab_txt(path, options);
  } else if (first_text != std::string::npos && prefix[first_text] == '{') {
    tokenizer = io::load_json(path, options);
  } else {
    tokenizer = io::load_sentencepiece_llama2c(path, options.vocab_size);
  }
  tokenizer->set_max_length(options.max_length);
  return tokenizer;
}

}  // namespace jagged
