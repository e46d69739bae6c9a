// SentencePiece-converted BPE from a Hugging Face tokenizer.json (Llama 2, Mistral, TinyLlama, Gemma): added
// tokens split out, the file's normalizer and pre-tokenizer (tokenizer_pipeline.h), then Hugging Face's BPE
// model over characters: each character is a vocabulary piece, or its UTF-8 bytes as <0xNN> pieces
// (byte_fallback), or the unknown token (consecutive ones fused with fuse_unk); merges apply by rank. Decoding
// runs the file's decoder chain. tokenizer_spm.cpp is the same family read from a llama2.c .bin or GGUF, where
// merges follow piece scores instead of a merge list.
//
// tokenizer_config.json beside the file: bos_token / eos_token, add_bos_token / add_eos_token (which override
// the post-processor's template, as transformers' Llama and Gemma tokenizers rebuild it from them), and for a
// Llama tokenizer `legacy: false`, which replaces the normalizer by a Metaspace pre-tokenizer that prepends
// U+2581 only at the start of the text (not after special tokens), as transformers.js and the slow tokenizer do.
#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "io/tokenizer_merges.h"
#include "io/tokenizer_pipeline.h"
#include "io/tokenizer_vocab.h"
#include "io/unicode.h"
#include "jagged/error.h"

namespace jagged::io {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581

struct SpmBpeConfig {
  Normalizer normalizer;
  MetaspacePreTokenizer pre;
  PieceDecoder decoder;
  AddedTokens normalized_added;  // added tokens with normalized: true, matched in the normalized text
  bool byte_fallback = false;
  bool fuse_unk = false;
  bool ignore_merges = false;
  bool llama_non_legacy = false;
};

class SentencePieceBpeTokenizer final : public VocabTokenizer {
 public:
  SentencePieceBpeTokenizer(Vocabulary vocab, AddedTokens added, SpmBpeConfig config, RankedMerges merges)
      : config_(std::move(config)), merges_(std::move(merges)) {
    vocab_ = std::move(vocab);
    added_ = std::move(added);
    byte_ids_.fill(-1);
    ascii_ids_.fill(-1);
    for (int byte = 0; byte < 256; ++byte) {
      char name[7];
      std::snprintf(name, sizeof(name), "<0x%02X>", byte);
      byte_ids_[static_cast<size_t>(byte)] = vocab_.find(name);
      if (byte < 128) ascii_ids_[static_cast<size_t>(byte)] = vocab_.find(std::string(1, static_cast<char>(byte)));
    }
    space_id_ = vocab_.find(kSpaceMarker);
  }

  std::string kind() const override { return "sentencepiece"; }

  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const override {
    std::vector<int32_t> ids;
    const bool add_eos = add_special && vocab_.add_eos && vocab_.eos >= 0;
    if (add_special && vocab_.add_bos && vocab_.bos >= 0) ids.push_back(vocab_.bos);
    std::string rewritten;
    if (config_.llama_non_legacy && !text.empty()) {  // U+2581 written in the text is a space there
      rewritten = std::string(text);
      replace_all(rewritten, kSpaceMarker, " ");
      rewritten.insert(0, kSpaceMarker);
      text = rewritten;
    }
    const size_t first = ids.size();
    for (const Fragment& fragment : added_.split(text, parse_special)) {
      if (fragment.token >= 0) ids.push_back(fragment.token);
      else encode_fragment(fragment.text, fragment.text.data() == text.data(), parse_special, ids);
    }
    // The prepended space alone before a special token is dropped (transformers' non-legacy Llama).
    if (config_.llama_non_legacy && ids.size() >= first + 2 && ids[first] == space_id_ &&
        vocab_.is_special(ids[first + 1])) {
      ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(first));
    }
    if (add_eos) ids.push_back(vocab_.eos);
    truncate(ids, add_eos);
    return ids;
  }

  std::string decode(const std::vector<int32_t>& ids) const override {
    std::vector<std::string> pieces;
    pieces.reserve(ids.size());
    for (const int32_t id : ids) {
      vocab_.check_id(id, "decode");
      if (!vocab_.is_special(id)) pieces.push_back(vocab_.pieces[static_cast<size_t>(id)]);
    }
    return config_.decoder.decode(std::move(pieces), /*at_start=*/true, /*at_end=*/true);
  }

  std::string decode_token(int32_t previous, int32_t id) const override {
    vocab_.check_id(id, "decode_token");
    if (vocab_.is_special(id)) return {};
    const bool at_start = previous < 0 || previous == vocab_.bos;
    return config_.decoder.decode({vocab_.pieces[static_cast<size_t>(id)]}, at_start, /*at_end=*/false);
  }

 private:
  // One piece of text between added tokens: normalized, split again at normalized added tokens, pre-tokenized,
  // each word through the model.
  void encode_fragment(std::string_view text, bool at_text_start, bool parse_special, std::vector<int32_t>& ids) const {
    std::string normalized(text);
    config_.normalizer.apply(normalized);
    std::vector<std::string> words;
    if (config_.normalized_added.empty()) {
      config_.pre.apply(std::move(normalized), at_text_start, words);
      for (const std::string& word : words) encode_word(word, ids);
      return;
    }
    for (const Fragment& part : config_.normalized_added.split(normalized, parse_special)) {
      if (part.token >= 0) {
        ids.push_back(part.token);
        continue;
      }
      words.clear();
      config_.pre.apply(std::string(part.text), at_text_start && part.text.data() == normalized.data(), words);
      for (const std::string& word : words) encode_word(word, ids);
    }
  }

  int32_t character_id(std::string_view character) const {
    if (character.size() == 1 && static_cast<uint8_t>(character[0]) < 128) {
      return ascii_ids_[static_cast<uint8_t>(character[0])];
    }
    return vocab_.find(character);
  }

  void encode_word(std::string_view word, std::vector<int32_t>& ids) const {
    if (word.empty()) return;
    if (config_.ignore_merges) {
      if (const int32_t id = vocab_.find(word); id >= 0) {
        ids.push_back(id);
        return;
      }
    }
    std::vector<int32_t> symbols;
    symbols.reserve(word.size());
    bool previous_unknown = false;
    for (size_t offset = 0; offset < word.size();) {
      const uint32_t length = unicode::decode_utf8(word, offset).length;  // an invalid byte is a character
      const std::string_view character = word.substr(offset, length);
      offset += length;
      if (const int32_t id = character_id(character); id >= 0) {
        symbols.push_back(id);
        previous_unknown = false;
        continue;
      }
      if (config_.byte_fallback && all_bytes_known(character)) {
        for (const char byte : character) symbols.push_back(byte_ids_[static_cast<uint8_t>(byte)]);
        previous_unknown = false;
        continue;
      }
      if (vocab_.unk < 0) {
        throw InvalidArgument(concat("encode: the character '", character,
                                     "' is not in the vocabulary, which has no byte pieces and no unknown token"));
      }
      if (!(config_.fuse_unk && previous_unknown)) symbols.push_back(vocab_.unk);
      previous_unknown = true;
    }
    merges_.apply(symbols);
    ids.insert(ids.end(), symbols.begin(), symbols.end());
  }

  bool all_bytes_known(std::string_view character) const {
    for (const char byte : character) {
      if (byte_ids_[static_cast<uint8_t>(byte)] < 0) return false;
    }
    return true;
  }

  SpmBpeConfig config_;
  RankedMerges merges_;
  std::array<int32_t, 256> byte_ids_{};   // byte -> id of its <0xNN> piece, -1 when absent
  std::array<int32_t, 128> ascii_ids_{};  // ASCII character -> id, -1 when absent
  int32_t space_id_ = -1;                 // U+2581 alone
};

// The id of a token the file names, -1 when `name` is null; FileError when it names no token.
int32_t named_token(const json& name, const Vocabulary& vocab, const char* what, const fs::path& path) {
  if (name.is_null()) return -1;
  if (!name.is_string()) throw FileError(concat(path.string(), ": ", what, " is not a string"));
  const int32_t id = vocab.find(name.get<std::string>());
  if (id < 0) throw FileError(concat(path.string(), ": ", what, " '", name.get<std::string>(), "' is not in the vocabulary"));
  return id;
}

}  // namespace

std::unique_ptr<VocabTokenizer> load_sentencepiece_bpe_json(const json& root, const fs::path& path) {
  const json& model = root["model"];
  for (const char* field : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(field) && model[field].is_string() && !model[field].get<std::string>().empty()) {
      throw FileError(concat(path.string(), ": BPE with a ", field, " is not supported"));
    }
  }
  if (model.contains("dropout") && !model["dropout"].is_null() &&
      !(model["dropout"].is_number() && model["dropout"].get<double>() == 0.0)) {
    throw FileError(concat(path.string(), ": BPE dropout ", model["dropout"].dump(),
                           " is not supported (dropout: null is; it makes encoding random)"));
  }
  SpmBpeConfig config;
  config.byte_fallback = model.value("byte_fallback", false);
  config.fuse_unk = model.value("fuse_unk", false);
  config.ignore_merges = model.value("ignore_merges", false);

  Vocabulary vocab;
  AddedTokens all_added;  // read_json_vocab's list; rebuilt below with every flag
  static const json missing;
  read_json_vocab(model.contains("vocab") ? model["vocab"] : missing, root, path, vocab, all_added);
  vocab.unk = named_token(model.value("unk_token", json()), vocab, "model.unk_token", path);

  const json tokenizer_config = read_tokenizer_config(path);
  const std::string tokenizer_class = tokenizer_config.value("tokenizer_class", std::string());
  config.llama_non_legacy = tokenizer_class.starts_with("LlamaTokenizer") && tokenizer_config.contains("legacy") &&
                            tokenizer_config["legacy"].is_boolean() && !tokenizer_config["legacy"].get<bool>();
  if (config.llama_non_legacy) {
    config.pre = MetaspacePreTokenizer::llama_first();
  } else {
    config.normalizer = Normalizer::from_json(root.value("normalizer", json()), path);
    config.pre = MetaspacePreTokenizer::from_json(root.value("pre_tokenizer", json()), path);
  }
  config.decoder = PieceDecoder::from_json(root.value("decoder", json()), path);

  AddedTokens added;
  for (const json& token : root.value("added_tokens", json::array())) {
    const bool special = token.value("special", false);
    std::string content = token["content"].get<std::string>();
    AddedTokens& target = token.value("normalized", !special) && !config.normalizer.empty() ? config.normalized_added : added;
    if (&target == &config.normalized_added) config.normalizer.apply(content);
    target.add(std::move(content), token["id"].get<int32_t>(), special, token.value("lstrip", false),
               token.value("rstrip", false), token.value("single_word", false));
  }

  // BOS / EOS: tokenizer_config.json's names, else the post-processor's; whether to add them: the config's
  // add_bos_token / add_eos_token, else whether the post-processor adds them.
  const PostProcessor post = read_json_post_processor(root, vocab);
  if (vocab.bos < 0) vocab.bos = post.first;
  if (vocab.eos < 0) vocab.eos = post.last;
  const auto flag = [&](const char* key, bool fallback) {
    return tokenizer_config.contains(key) && tokenizer_config[key].is_boolean() ? tokenizer_config[key].get<bool>()
                                                                                 : fallback;
  };
  vocab.add_bos = flag("add_bos_token", post.first >= 0);
  vocab.add_eos = flag("add_eos_token", post.last >= 0);

  const std::vector<std::pair<std::string, std::string>> merge_list = read_json_merges(model, path);
  RankedMerges merges;
  merges.reserve(merge_list.size());
  for (size_t rank = 0; rank < merge_list.size(); ++rank) {
    const auto& [left, right] = merge_list[rank];
    const int32_t left_id = vocab.find(left);
    const int32_t right_id = vocab.find(right);
    const int32_t merged_id = vocab.find(left + right);
    if (left_id < 0 || right_id < 0 || merged_id < 0) {
      const std::string& missing_piece = left_id < 0 ? left : right_id < 0 ? right : left + right;
      throw FileError(concat(path.string(), ": merge ", rank, " ('", left, "' '", right,
                             "') names a token that is not in the vocabulary ('", missing_piece, "')"));
    }
    merges.add(left_id, right_id, merged_id, static_cast<int32_t>(rank));
  }
  return std::make_unique<SentencePieceBpeTokenizer>(std::move(vocab), std::move(added), std::move(config),
                                                     std::move(merges));
}

}  // namespace jagged::io
