// Normalizers, pre-tokenizers and decoders of a SentencePiece-converted tokenizer.json, with the semantics of
// Hugging Face tokenizers (normalizers/*.rs, pre_tokenizers/{metaspace,split}.rs, decoders/*.rs).
#include "io/tokenizer_pipeline.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "io/tokenizer_vocab.h"
#include "io/unicode.h"
#include "jagged/error.h"

namespace jagged::io {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A tokenizer.json "pattern": {"String": "..."}; a Regex pattern is refused (only String patterns are used by
// the SentencePiece conversions).
std::string string_pattern(const json& step, const char* stage, const fs::path& path) {
  const json& pattern = step.value("pattern", json());
  if (pattern.is_object() && pattern.contains("String") && pattern["String"].is_string()) {
    const std::string text = pattern["String"].get<std::string>();
    if (!text.empty()) return text;
  }
  if (pattern.is_object() && pattern.contains("Regex")) {
    throw FileError(concat(path.string(), ": ", stage, " with a Regex pattern ('", pattern["Regex"].dump(),
                           "') is not supported (only a String pattern, the regex is not implemented)"));
  }
  throw FileError(concat(path.string(), ": ", stage, " has no non-empty String pattern"));
}

std::string replacement_char(const json& step, const char* stage, const fs::path& path) {
  const std::string text = step.value("replacement", std::string("\xE2\x96\x81"));
  if (text.empty() || unicode::decode_utf8(text, 0).length != text.size()) {
    throw FileError(concat(path.string(), ": ", stage, " replacement '", text, "' is not one character"));
  }
  return text;
}

// The steps of a "Sequence" (under `list_key`) or the value itself.
std::vector<const json*> flatten(const json& config, const char* list_key) {
  if (config.is_object() && config.value("type", "") == "Sequence" && config.contains(list_key) &&
      config[list_key].is_array()) {
    std::vector<const json*> steps;
    for (const json& step : config[list_key]) {
      for (const json* inner : flatten(step, list_key)) steps.push_back(inner);
    }
    return steps;
  }
  return {&config};
}

std::string type_of(const json& step, const char* stage, const fs::path& path) {
  if (!step.is_object() || !step.contains("type") || !step["type"].is_string()) {
    throw FileError(concat(path.string(), ": a ", stage, " without a \"type\""));
  }
  return step["type"].get<std::string>();
}

// Hugging Face's `char::is_whitespace` (White_Space) over UTF-8, invalid bytes counting as non-space.
bool whitespace_at(std::string_view text, size_t offset, uint32_t& length) {
  const unicode::Decoded decoded = unicode::decode_utf8(text, offset);
  length = decoded.length;
  return decoded.valid && unicode::is_whitespace(decoded.code_point);
}

// Applies `map` to the code points of valid UTF-8 text; text with invalid bytes is left as it is.
template <typename Map>
void map_if_valid(std::string& text, Map map) {
  if (unicode::is_valid_utf8(text)) {
    text = unicode::to_utf8(map(unicode::to_code_points(text)));
  }
}

}  // namespace

// ---- normalizers ----

Normalizer Normalizer::from_json(const json& config, const fs::path& path) {
  Normalizer normalizer;
  if (!config.is_null()) {
    for (const json* step : flatten(config, "normalizers")) normalizer.add(*step, path);
  }
  return normalizer;
}

void Normalizer::add(const json& config, const fs::path& path) {
  const std::string type = type_of(config, "normalizer", path);
  Step step{Type::prepend, {}, {}};
  if (type == "Prepend") {
    step.to = config.value("prepend", std::string());
  } else if (type == "Replace") {
    step.type = Type::replace;
    step.from = string_pattern(config, "Replace normalizer", path);
    step.to = config.value("content", std::string());
  } else if (type == "NFC" || type == "NFD") {
    step.type = type == "NFC" ? Type::nfc : Type::nfd;
  } else if (type == "Lowercase") {
    step.type = Type::lowercase;
  } else if (type == "Strip") {
    step.type = Type::strip;
    step.left = config.value("strip_left", false);
    step.right = config.value("strip_right", false);
  } else {
    throw FileError(concat(path.string(), ": normalizer '", type,
                           "' is not supported (Prepend, Replace, NFC, NFD, Lowercase, Strip and Sequence are)"));
  }
  steps_.push_back(std::move(step));
}

void Normalizer::apply(std::string& text) const {
  for (const Step& step : steps_) {
    switch (step.type) {
      case Type::prepend:
        if (!text.empty()) text.insert(0, step.to);
        break;
      case Type::replace:
        replace_all(text, step.from, step.to);
        break;
      case Type::nfc:
        map_if_valid(text, [](const std::u32string& code_points) { return unicode::nfc(code_points); });
        break;
      case Type::nfd:
        map_if_valid(text, [](const std::u32string& code_points) { return unicode::nfd(code_points); });
        break;
      case Type::lowercase: {
        std::string lowered;
        lowered.reserve(text.size());
        for (size_t offset = 0; offset < text.size();) {
          const unicode::Decoded decoded = unicode::decode_utf8(text, offset);
          if (decoded.valid) unicode::append_utf8(lowered, unicode::to_lower(decoded.code_point));
          else lowered.append(text, offset, decoded.length);
          offset += decoded.length;
        }
        text = std::move(lowered);
        break;
      }
      case Type::strip: {
        size_t begin = 0;
        uint32_t length = 0;
        while (step.left && begin < text.size() && whitespace_at(text, begin, length)) begin += length;
        size_t end = text.size();
        if (step.right) {  // scan forwards, remembering where the trailing run of spaces starts
          size_t run = end;
          for (size_t offset = begin; offset < text.size(); offset += length) {
            if (whitespace_at(text, offset, length)) {
              if (run == text.size()) run = offset;
            } else {
              run = text.size();
            }
          }
          end = run;
        }
        text = text.substr(begin, end - begin);
        break;
      }
    }
  }
}

// ---- pre-tokenizers ----

MetaspacePreTokenizer MetaspacePreTokenizer::from_json(const json& config, const fs::path& path) {
  MetaspacePreTokenizer pre;
  if (!config.is_null()) {
    for (const json* step : flatten(config, "pretokenizers")) pre.add(*step, path);
  }
  return pre;
}

MetaspacePreTokenizer MetaspacePreTokenizer::llama_first() {
  MetaspacePreTokenizer pre;
  Step step{true, "\xE2\x96\x81"};
  step.prepend = Prepend::first;
  step.split = false;
  pre.steps_.push_back(step);
  return pre;
}

void MetaspacePreTokenizer::add(const json& config, const fs::path& path) {
  const std::string type = type_of(config, "pre-tokenizer", path);
  Step step{type == "Metaspace", {}};
  if (type == "Metaspace") {
    step.pattern = replacement_char(config, "Metaspace", path);
    const std::string scheme = config.value("prepend_scheme", std::string("always"));
    if (scheme == "always") step.prepend = Prepend::always;
    else if (scheme == "first") step.prepend = Prepend::first;
    else if (scheme == "never") step.prepend = Prepend::never;
    else throw FileError(concat(path.string(), ": Metaspace prepend_scheme '", scheme, "' is not always/first/never"));
    if (config.contains("add_prefix_space") && config["add_prefix_space"].is_boolean() &&
        !config["add_prefix_space"].get<bool>()) {
      step.prepend = Prepend::never;  // the older field; false wins, as in tokenizers
    }
    step.split = config.value("split", true);
  } else if (type == "Split") {
    step.pattern = string_pattern(config, "Split pre-tokenizer", path);
    const std::string behavior = config.value("behavior", std::string("Isolated"));
    if (behavior == "Removed") step.behavior = Behavior::removed;
    else if (behavior == "Isolated") step.behavior = Behavior::isolated;
    else if (behavior == "MergedWithPrevious") step.behavior = Behavior::merged_with_previous;
    else if (behavior == "MergedWithNext") step.behavior = Behavior::merged_with_next;
    else if (behavior == "Contiguous") step.behavior = Behavior::contiguous;
    else throw FileError(concat(path.string(), ": Split behavior '", behavior, "' is not supported"));
    step.invert = config.value("invert", false);
  } else {
    throw FileError(concat(path.string(), ": pre-tokenizer '", type,
                           "' is not supported with a SentencePiece-style BPE model (Metaspace, Split with a String "
                           "pattern and Sequence are)"));
  }
  steps_.push_back(std::move(step));
}

// Hugging Face's NormalizedString::split: the text cut at each occurrence of `pattern` into (piece, is_match),
// then joined according to `behavior`; empty pieces dropped.
void MetaspacePreTokenizer::split(const Word& word, std::string_view pattern, Behavior behavior, bool invert,
                                  std::vector<Word>& out) {
  struct Piece {
    size_t begin, end;
    bool match;
  };
  const std::string& text = word.text;
  std::vector<Piece> pieces;
  size_t previous = 0;
  for (size_t found; (found = text.find(pattern, previous)) != std::string::npos; previous = found + pattern.size()) {
    if (found != previous) pieces.push_back({previous, found, invert});
    pieces.push_back({found, found + pattern.size(), !invert});
  }
  if (previous != text.size()) pieces.push_back({previous, text.size(), invert});

  std::vector<Piece> joined;
  bool previous_match = false;
  switch (behavior) {
    case Behavior::removed:
      for (const Piece& piece : pieces) {
        if (!piece.match) joined.push_back(piece);
      }
      break;
    case Behavior::isolated:
      joined = pieces;
      break;
    case Behavior::merged_with_previous:
      for (const Piece& piece : pieces) {
        if (piece.match && !previous_match && !joined.empty()) joined.back().end = piece.end;
        else joined.push_back(piece);
        previous_match = piece.match;
      }
      break;
    case Behavior::merged_with_next:
      for (auto piece = pieces.rbegin(); piece != pieces.rend(); ++piece) {
        if (piece->match && !previous_match && !joined.empty()) joined.back().begin = piece->begin;
        else joined.push_back(*piece);
        previous_match = piece->match;
      }
      std::reverse(joined.begin(), joined.end());
      break;
    case Behavior::contiguous:
      for (const Piece& piece : pieces) {
        if (piece.match == previous_match && !joined.empty()) joined.back().end = piece.end;
        else joined.push_back(piece);
        previous_match = piece.match;
      }
      break;
  }
  for (const Piece& piece : joined) {
    if (piece.end > piece.begin) {
      out.push_back({text.substr(piece.begin, piece.end - piece.begin), word.at_text_start && piece.begin == 0});
    }
  }
}

void MetaspacePreTokenizer::apply(std::string text, bool at_text_start, std::vector<std::string>& words) const {
  std::vector<Word> current;
  current.push_back({std::move(text), at_text_start});
  std::vector<Word> next;
  for (const Step& step : steps_) {
    next.clear();
    for (Word& word : current) {
      if (!step.metaspace) {
        split(word, step.pattern, step.behavior, step.invert, next);
        continue;
      }
      replace_all(word.text, " ", step.pattern);
      const bool prepend = step.prepend == Prepend::always || (step.prepend == Prepend::first && word.at_text_start);
      if (prepend && !word.text.starts_with(step.pattern)) word.text.insert(0, step.pattern);
      if (step.split) split(word, step.pattern, Behavior::merged_with_next, false, next);
      else next.push_back(std::move(word));
    }
    current.swap(next);
  }
  for (Word& word : current) words.push_back(std::move(word.text));
}

// ---- decoders ----

PieceDecoder PieceDecoder::from_json(const json& config, const fs::path& path) {
  PieceDecoder decoder;
  decoder.null_ = config.is_null();
  if (!config.is_null()) {
    for (const json* step : flatten(config, "decoders")) decoder.add(*step, path);
  }
  return decoder;
}

void PieceDecoder::add(const json& config, const fs::path& path) {
  const std::string type = type_of(config, "decoder", path);
  Step step{Type::fuse, {}, {}};
  if (type == "Replace") {
    step.type = Type::replace;
    step.from = string_pattern(config, "Replace decoder", path);
    step.to = config.value("content", std::string());
  } else if (type == "ByteFallback") {
    step.type = Type::byte_fallback;
  } else if (type == "Fuse") {
    step.type = Type::fuse;
  } else if (type == "Strip") {
    step.type = Type::strip;
    step.from = config.value("content", std::string(" "));
    step.start = config.value("start", int64_t{0});
    step.stop = config.value("stop", int64_t{0});
    if (step.from.empty() || step.start < 0 || step.stop < 0) {
      throw FileError(concat(path.string(), ": Strip decoder needs a character and start, stop >= 0"));
    }
  } else if (type == "Metaspace") {
    step.type = Type::metaspace;
    step.from = replacement_char(config, "Metaspace decoder", path);
    const bool add_prefix_space = config.value("add_prefix_space", true);
    step.strip_first = config.value("prepend_scheme", std::string("always")) != "never" && add_prefix_space;
  } else {
    throw FileError(concat(path.string(), ": decoder '", type,
                           "' is not supported with a SentencePiece-style BPE model (Replace, ByteFallback, Fuse, "
                           "Strip, Metaspace and Sequence are)"));
  }
  steps_.push_back(std::move(step));
}

std::string PieceDecoder::decode(std::vector<std::string> pieces, bool at_start, bool at_end) const {
  if (null_) {
    std::string joined;
    for (size_t i = 0; i < pieces.size(); ++i) joined += (i ? " " : "") + pieces[i];
    return joined;
  }
  bool fused = false;  // after Fuse, the one piece is the whole output (or, streaming, a part of it)
  for (const Step& step : steps_) {
    switch (step.type) {
      case Type::replace:
        for (std::string& piece : pieces) replace_all(piece, step.from, step.to);
        break;
      case Type::byte_fallback: {
        std::vector<std::string> out;
        std::string bytes;  // a run of <0xNN> pieces becomes one piece
        for (std::string& piece : pieces) {
          const int value = parse_byte_piece(piece);
          if (value >= 0) {
            bytes.push_back(static_cast<char>(value));
            continue;
          }
          if (!bytes.empty()) out.push_back(std::move(bytes));
          bytes.clear();
          out.push_back(std::move(piece));
        }
        if (!bytes.empty()) out.push_back(std::move(bytes));
        pieces = std::move(out);
        break;
      }
      case Type::fuse: {
        std::string joined;
        for (const std::string& piece : pieces) joined += piece;
        pieces.assign(1, std::move(joined));
        fused = true;
        break;
      }
      case Type::strip:
        for (std::string& piece : pieces) {
          int64_t start = fused && !at_start ? 0 : step.start;
          size_t begin = 0;
          while (start-- > 0 && piece.compare(begin, step.from.size(), step.from) == 0) begin += step.from.size();
          int64_t stop = fused && !at_end ? 0 : step.stop;
          size_t end = piece.size();
          while (stop-- > 0 && end >= begin + step.from.size() &&
                 piece.compare(end - step.from.size(), step.from.size(), step.from) == 0) {
            end -= step.from.size();
          }
          piece = piece.substr(begin, end - begin);
        }
        break;
      case Type::metaspace:
        for (size_t i = 0; i < pieces.size(); ++i) {
          // Hugging Face drops every replacement character of the output's first piece, spaces the others.
          replace_all(pieces[i], step.from, i == 0 && at_start && step.strip_first ? "" : " ");
        }
        break;
    }
  }
  std::string text;
  for (const std::string& piece : pieces) text += piece;
  return text;
}

}  // namespace jagged::io
