// WordPiece (BERT), as Hugging Face's BertNormalizer + BertPreTokenizer + WordPiece: clean the text (drop
// controls and U+FFFD, whitespace to spaces), isolate CJK ideographs, strip accents (NFD, drop Mn) and
// lower-case for uncased models, split at whitespace and punctuation, then greedy longest-match-first with
// "##" continuations; a word longer than 100 characters or with an unmatched rest is [UNK].
// Vocabularies: vocab.txt, tokenizer.json (model WordPiece), GGUF "bert" (both llama.cpp's U+2581 word-start
// convention and "##" continuations).
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/gguf.h"
#include "io/tokenizer_vocab.h"
#include "io/unicode.h"
#include "jagged/error.h"

namespace jagged::io {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::string_view kWordStartMarker = "\xE2\x96\x81";  // llama.cpp's GGUF bert vocabularies

struct WordPieceConfig {
  bool clean_text = true;
  bool chinese_chars = true;
  bool strip_accents = true;
  bool lowercase = true;
  size_t max_chars_per_word = 100;
  bool cleanup = true;  // decoder: no space before . , ! ?
};

// How the vocabulary reads: each id's text without markers, whether it continues a word, and the lookups.
struct WordPieceTable {
  std::vector<std::string> texts;   // [vocab_size] without "##" / U+2581
  std::vector<bool> continuation;   // [vocab_size]
  PieceMap word_start;              // text -> id, pieces that begin a word
  PieceMap word_continuation;       // text -> id, "##" pieces
  size_t max_piece_bytes = 0;
};

bool is_cjk_ideograph(char32_t c) {  // BERT's _is_chinese_char ranges
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool is_bert_punctuation(char32_t c) {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126) ||
         unicode::is_punctuation(c);
}

class WordPieceTokenizer final : public VocabTokenizer {
 public:
  WordPieceTokenizer(Vocabulary vocab, AddedTokens added, WordPieceTable table, WordPieceConfig config)
      : table_(std::move(table)), config_(config) {
    vocab_ = std::move(vocab);
    added_ = std::move(added);
  }

  std::string kind() const override { return "wordpiece"; }

  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const override {
    std::vector<int32_t> ids;
    for (const Fragment& fragment : added_.split(text, parse_special)) {
      if (fragment.token >= 0) ids.push_back(fragment.token);
      else encode_text(fragment.text, ids);
    }
    const bool add_cls = add_special && vocab_.bos >= 0;
    const bool add_sep = add_special && vocab_.eos >= 0;
    if (max_length_ > 0) {
      const int64_t room = std::max<int64_t>(0, max_length_ - add_cls - add_sep);
      if (static_cast<int64_t>(ids.size()) > room) ids.resize(static_cast<size_t>(room));
    }
    if (add_cls) ids.insert(ids.begin(), vocab_.bos);
    if (add_sep) ids.push_back(vocab_.eos);
    truncate(ids, add_sep);  // only when max_length_ cannot even hold [CLS] [SEP]
    return ids;
  }

  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string text;
    int32_t previous = -1;
    for (const int32_t id : ids) {
      vocab_.check_id(id, "decode");
      if (vocab_.is_special(id)) continue;
      text += token_text(previous, id);
      previous = id;
    }
    return text;
  }

  std::string decode_token(int32_t previous, int32_t id) const override {
    vocab_.check_id(id, "decode_token");
    if (vocab_.is_special(id)) return {};
    if (previous >= 0 && (previous >= vocab_.size() || vocab_.is_special(previous))) previous = -1;
    return token_text(previous, id);
  }

 private:
  std::string token_text(int32_t previous, int32_t id) const {
    const std::string& text = table_.texts[static_cast<size_t>(id)];
    std::string out;
    if (previous >= 0 && !table_.continuation[static_cast<size_t>(id)]) out.push_back(' ');
    out.append(text);
    if (config_.cleanup) {  // Hugging Face's WordPiece decoder clean-up, applied to each token as it does
      for (const auto& [from, to] : {std::pair{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
                                     {" n't", "n't"}, {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"},
                                     {" 've", "'ve"}, {" 're", "'re"}}) {
        replace_all(out, from, to);
      }
    }
    return out;
  }

  void encode_text(std::string_view text, std::vector<int32_t>& ids) const {
    std::u32string normalized;
    normalized.reserve(text.size());
    for (char32_t c : unicode::to_code_points(text)) {
      if (config_.clean_text) {
        const bool kept_control = c == '\t' || c == '\n' || c == '\r';
        if (c == 0 || c == unicode::kReplacement || (!kept_control && unicode::is_other(c))) continue;
        if (kept_control || unicode::is_whitespace(c)) c = ' ';
      }
      normalized.push_back(c);
    }
    if (config_.strip_accents) {
      std::u32string stripped;
      for (const char32_t c : unicode::nfd(normalized)) {
        if (!unicode::is_mark_nonspacing(c)) stripped.push_back(c);
      }
      normalized = std::move(stripped);
    }
    std::u32string word;
    const auto finish_word = [&] {
      if (!word.empty()) encode_word(word, ids);
      word.clear();
    };
    for (const char32_t c : normalized) {
      if (unicode::is_whitespace(c)) {
        finish_word();
      } else if (is_bert_punctuation(c) || (config_.chinese_chars && is_cjk_ideograph(c))) {
        finish_word();
        word.push_back(config_.lowercase ? unicode::to_lower(c) : c);
        finish_word();
      } else if (config_.lowercase && c == 0x130) {
        word += U"i\u0307";  // İ lower-cases to two code points (Rust's and Python's full mapping)
      } else {
        word.push_back(config_.lowercase ? unicode::to_lower(c) : c);
      }
    }
    finish_word();
  }

  void encode_word(std::u32string_view word, std::vector<int32_t>& ids) const {
    if (word.size() > config_.max_chars_per_word) {
      ids.push_back(vocab_.unk);
      return;
    }
    std::string utf8;
    std::vector<size_t> boundaries{0};  // byte offset of each code point, then the end
    for (const char32_t c : word) {
      unicode::append_utf8(utf8, c);
      boundaries.push_back(utf8.size());
    }
    const size_t first_new = ids.size();
    for (size_t start = 0; start + 1 < boundaries.size();) {
      const PieceMap& pieces = start == 0 ? table_.word_start : table_.word_continuation;
      int32_t found = -1;
      size_t end = boundaries.size() - 1;
      for (; end > start; --end) {
        const size_t length = boundaries[end] - boundaries[start];
        if (length > table_.max_piece_bytes) continue;
        const auto match = pieces.find(std::string_view(utf8).substr(boundaries[start], length));
        if (match != pieces.end()) {
          found = match->second;
          break;
        }
      }
      if (found < 0) {  // an unmatched rest makes the whole word unknown
        ids.resize(first_new);
        ids.push_back(vocab_.unk);
        return;
      }
      ids.push_back(found);
      start = end;
    }
  }

  WordPieceTable table_;
  WordPieceConfig config_;
};

// "[CLS]"-style names of BERT's special tokens.
bool is_bert_special_name(std::string_view piece) {
  return piece == "[PAD]" || piece == "[UNK]" || piece == "[CLS]" || piece == "[SEP]" || piece == "[MASK]";
}

// Builds the lookups. `word_start_marker`: pieces beginning a word carry it (llama.cpp GGUF) and the others
// continue a word; else continuations carry `prefix` ("##").
WordPieceTable make_table(const Vocabulary& vocab, std::string_view prefix, bool word_start_marker) {
  WordPieceTable table;
  table.texts.resize(vocab.pieces.size());
  table.continuation.resize(vocab.pieces.size(), false);
  for (size_t id = 0; id < vocab.pieces.size(); ++id) {
    const std::string& piece = vocab.pieces[id];
    std::string text = piece;
    bool continuation = false;
    const bool special = vocab.is_special(static_cast<int32_t>(id));
    if (word_start_marker && !special) {
      if (piece.starts_with(kWordStartMarker)) text = piece.substr(kWordStartMarker.size());
      else continuation = true;
    } else if (!word_start_marker && !prefix.empty() && piece.starts_with(prefix) && piece.size() > prefix.size()) {
      text = piece.substr(prefix.size());
      continuation = true;
    }
    table.texts[id] = text;
    table.continuation[id] = continuation;
    if (special || vocab.kinds[id] == TokenKind::unused || text.empty()) continue;
    (continuation ? table.word_continuation : table.word_start).emplace(text, static_cast<int32_t>(id));
    table.max_piece_bytes = std::max(table.max_piece_bytes, text.size());
  }
  return table;
}

// Uncased vocabularies hold no upper-case letters outside their [SPECIAL] names.
bool guess_lowercase(const WordPieceTable& table, const Vocabulary& vocab) {
  for (size_t id = 0; id < table.texts.size(); ++id) {
    if (vocab.is_special(static_cast<int32_t>(id))) continue;
    for (const char c : table.texts[id]) {
      if (c >= 'A' && c <= 'Z') return false;
    }
  }
  return true;
}

// [CLS] / [SEP] / [UNK] by name when the file does not give the ids.
void find_bert_specials(Vocabulary& vocab, const fs::path& path) {
  if (vocab.bos < 0) vocab.bos = vocab.find("[CLS]");
  if (vocab.eos < 0) vocab.eos = vocab.find("[SEP]");
  if (vocab.unk < 0) vocab.unk = vocab.find("[UNK]");
  if (vocab.unk < 0) throw FileError(concat(path.string(), ": the WordPiece vocabulary has no [UNK] token"));
  for (const int32_t id : {vocab.bos, vocab.eos}) {
    if (id >= 0 && vocab.kinds[static_cast<size_t>(id)] == TokenKind::normal) vocab.kinds[static_cast<size_t>(id)] = TokenKind::control;
  }
  if (vocab.kinds[static_cast<size_t>(vocab.unk)] == TokenKind::normal) vocab.kinds[static_cast<size_t>(vocab.unk)] = TokenKind::unknown;
}

std::optional<bool> config_lowercase(const fs::path& path) {
  std::ifstream file(path.parent_path() / "tokenizer_config.json");
  if (!file) return std::nullopt;
  const json config = json::parse(file, nullptr, /*allow_exceptions=*/false);
  if (config.is_object() && config.contains("do_lower_case") && config["do_lower_case"].is_boolean()) {
    return config["do_lower_case"].get<bool>();
  }
  return std::nullopt;
}

std::unique_ptr<VocabTokenizer> finish(Vocabulary vocab, AddedTokens added, WordPieceTable table, WordPieceConfig config) {
  return std::make_unique<WordPieceTokenizer>(std::move(vocab), std::move(added), std::move(table), config);
}

}  // namespace

std::unique_ptr<VocabTokenizer> load_wordpiece_vocab_txt(const fs::path& path, const TokenizerOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(concat(path.string(), ": cannot open the vocabulary"));
  Vocabulary vocab;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    vocab.pieces.push_back(std::move(line));
  }
  if (vocab.pieces.empty()) throw FileError(concat(path.string(), ": the vocabulary is empty"));
  vocab.index();
  for (size_t id = 0; id < vocab.pieces.size(); ++id) {
    if (is_bert_special_name(vocab.pieces[id])) vocab.kinds[id] = TokenKind::control;
  }
  find_bert_specials(vocab, path);
  AddedTokens added;
  added.add_from(vocab);
  WordPieceTable table = make_table(vocab, "##", false);
  WordPieceConfig config;
  config.lowercase = options.lowercase.value_or(config_lowercase(path).value_or(guess_lowercase(table, vocab)));
  config.strip_accents = config.lowercase;
  return finish(std::move(vocab), std::move(added), std::move(table), config);
}

std::unique_ptr<VocabTokenizer> load_wordpiece_json(const json& root, const fs::path& path,
                                                    const TokenizerOptions& options) {
  const json& model = root["model"];
  Vocabulary vocab;
  AddedTokens added;
  static const json missing;
  read_json_vocab(model.contains("vocab") ? model["vocab"] : missing, root, path, vocab, added);
  if (model.contains("unk_token") && model["unk_token"].is_string()) vocab.unk = vocab.find(model["unk_token"].get<std::string>());
  const PostProcessor post = read_json_post_processor(root, vocab);
  if (post.first >= 0) vocab.bos = post.first;
  if (post.last >= 0) vocab.eos = post.last;
  find_bert_specials(vocab, path);

  WordPieceConfig config;
  config.max_chars_per_word = model.value("max_input_chars_per_word", size_t{100});
  const json& normalizer = root.value("normalizer", json());
  if (normalizer.is_null()) {
    config.clean_text = config.chinese_chars = config.strip_accents = config.lowercase = false;
  } else if (normalizer.value("type", "") == "BertNormalizer") {
    config.clean_text = normalizer.value("clean_text", true);
    config.chinese_chars = normalizer.value("handle_chinese_chars", true);
    config.lowercase = normalizer.value("lowercase", true);
    const json& strip = normalizer.value("strip_accents", json());
    config.strip_accents = strip.is_boolean() ? strip.get<bool>() : config.lowercase;
  } else {
    throw FileError(concat(path.string(), ": WordPiece normalizer '", normalizer.value("type", ""),
                           "' is not supported (BertNormalizer is)"));
  }
  if (options.lowercase) config.lowercase = config.strip_accents = *options.lowercase;
  const json& pre = root.value("pre_tokenizer", json());
  if (!pre.is_null() && pre.value("type", "") != "BertPreTokenizer") {
    throw FileError(concat(path.string(), ": WordPiece pre-tokenizer '", pre.value("type", ""),
                           "' is not supported (BertPreTokenizer is)"));
  }
  const json& decoder = root.value("decoder", json());
  config.cleanup = decoder.is_object() ? decoder.value("cleanup", true) : true;
  const std::string prefix = model.value("continuing_subword_prefix", std::string("##"));
  WordPieceTable table = make_table(vocab, prefix, false);
  return finish(std::move(vocab), std::move(added), std::move(table), config);
}

std::unique_ptr<VocabTokenizer> load_wordpiece_gguf(const GgufFile& file, const TokenizerOptions& options) {
  const fs::path& path = file.path();
  Vocabulary vocab = read_gguf_vocab(file);
  vocab.unk = read_gguf_token_id(file, "tokenizer.ggml.unknown_token_id");
  vocab.bos = read_gguf_token_id(file, "tokenizer.ggml.cls_token_id");
  vocab.eos = read_gguf_token_id(file, "tokenizer.ggml.seperator_token_id");  // sic: llama.cpp's key
  if (vocab.eos < 0) vocab.eos = read_gguf_token_id(file, "tokenizer.ggml.separator_token_id");
  vocab.check_special_id(vocab.unk, "unknown-token", path);
  vocab.check_special_id(vocab.bos, "CLS", path);
  vocab.check_special_id(vocab.eos, "SEP", path);
  find_bert_specials(vocab, path);

  bool word_start_marker = false;
  for (const std::string& piece : vocab.pieces) word_start_marker = word_start_marker || piece.starts_with(kWordStartMarker);
  AddedTokens added;
  added.add_from(vocab);
  WordPieceTable table = make_table(vocab, "##", word_start_marker);
  WordPieceConfig config;
  const GgufValue* lowercase = file.find("tokenizer.ggml.normalizer.lowercase");
  config.lowercase = options.lowercase.value_or(lowercase ? lowercase->as_bool("tokenizer.ggml.normalizer.lowercase")
                                                          : guess_lowercase(table, vocab));
  const GgufValue* strip = file.find("tokenizer.ggml.normalizer.strip_accents");
  config.strip_accents = strip && !options.lowercase ? strip->as_bool("tokenizer.ggml.normalizer.strip_accents")
                                                     : config.lowercase;
  return finish(std::move(vocab), std::move(added), std::move(table), config);
}

}  // namespace jagged::io
