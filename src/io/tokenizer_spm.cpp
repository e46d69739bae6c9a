// SentencePiece-style BPE, as llama.cpp's llm_tokenizer_spm and llama2.c's run.c: a dummy-prefix space, spaces
// as U+2581, then repeatedly merge the adjacent pair whose merged piece scores highest; characters that never
// became a piece fall back to <0xNN> byte tokens. Vocabularies: llama2.c tokenizer .bin, GGUF "llama".
#include <array>
#include <cstring>
#include <fstream>
#include <queue>

#include "io/gguf.h"
#include "io/tokenizer_vocab.h"
#include "io/unicode.h"
#include "jagged/error.h"

namespace jagged::io {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

class SentencePieceTokenizer final : public VocabTokenizer {
 public:
  // `space` is how the vocabulary writes a space: U+2581 (GGUF), or ' ' (llama2.c's export replaced it).
  SentencePieceTokenizer(Vocabulary vocab, std::vector<float> scores, bool add_space_prefix, std::string space)
      : scores_(std::move(scores)), add_space_prefix_(add_space_prefix), space_(std::move(space)) {
    vocab_ = std::move(vocab);
    byte_ids_.fill(-1);
    for (int32_t id = 0; id < vocab_.size(); ++id) {
      const int value = parse_byte_piece(vocab_.pieces[static_cast<size_t>(id)]);
      if (value >= 0 && (vocab_.kinds[static_cast<size_t>(id)] == TokenKind::byte ||
                         vocab_.kinds[static_cast<size_t>(id)] == TokenKind::normal)) {
        vocab_.kinds[static_cast<size_t>(id)] = TokenKind::byte;
        if (byte_ids_[static_cast<size_t>(value)] < 0) byte_ids_[static_cast<size_t>(value)] = id;
      }
    }
    added_.add_from(vocab_);
  }

  std::string kind() const override { return "sentencepiece"; }

  SentencePieceVocab gguf_form() const {
    SentencePieceVocab out{vocab_, scores_, add_space_prefix_};
    if (space_ == kSpaceMarker) return out;
    for (size_t id = 0; id < out.vocab.pieces.size(); ++id) {  // llama2.c's export wrote spaces as ' '
      if (out.vocab.kinds[id] == TokenKind::normal) replace_all(out.vocab.pieces[id], space_, kSpaceMarker);
    }
    return out;
  }

  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const override {
    std::vector<int32_t> ids;
    const bool add_bos = add_special && vocab_.add_bos && vocab_.bos >= 0;
    const bool add_eos = add_special && vocab_.add_eos && vocab_.eos >= 0;
    if (add_bos) ids.push_back(vocab_.bos);
    bool previous_special = true;  // the dummy prefix goes at the start and after each special token
    for (const Fragment& fragment : added_.split(text, parse_special)) {
      if (fragment.token >= 0) {
        ids.push_back(fragment.token);
        previous_special = true;
        continue;
      }
      std::string escaped = add_space_prefix_ && previous_special ? " " : "";
      escaped.append(fragment.text);
      replace_all(escaped, " ", space_);
      encode_text(escaped, ids);
      previous_special = false;
    }
    if (add_eos) ids.push_back(vocab_.eos);
    truncate(ids, add_eos);
    return ids;
  }

  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string text;
    bool at_start = true;
    for (const int32_t id : ids) {
      vocab_.check_id(id, "decode");
      if (vocab_.is_special(id)) continue;
      std::string piece_text = token_text(id);
      if (at_start && add_space_prefix_ && vocab_.kinds[static_cast<size_t>(id)] == TokenKind::normal &&
          piece_text.starts_with(' ')) {
        piece_text.erase(0, 1);
      }
      at_start = false;
      text += piece_text;
    }
    return text;
  }

  std::string decode_token(int32_t previous, int32_t id) const override {
    vocab_.check_id(id, "decode_token");
    if (vocab_.is_special(id)) return {};
    std::string piece_text = token_text(id);
    const bool at_start = add_space_prefix_ && (previous < 0 || previous == vocab_.bos);
    if (at_start && vocab_.kinds[static_cast<size_t>(id)] == TokenKind::normal && piece_text.starts_with(' ')) {
      piece_text.erase(0, 1);
    }
    return piece_text;
  }

 private:
  // A run of bytes of the escaped text; merged symbols grow, the absorbed right symbol gets length 0.
  struct Symbol {
    uint32_t begin;
    uint32_t length;
    int32_t prev;
    int32_t next;
  };
  struct Bigram {
    float score;
    int32_t left;
    int32_t right;
    uint32_t length;  // bytes of the merged piece: a symbol that changed since no longer matches
    bool operator<(const Bigram& other) const {  // the queue's top: highest score, then leftmost
      return score != other.score ? score < other.score : left > other.left;
    }
  };

  // A piece the merges may produce: normal or user-defined (never control, byte or unused pieces).
  int32_t mergeable(std::string_view text) const {
    const int32_t id = vocab_.find(text);
    if (id < 0) return -1;
    const TokenKind kind = vocab_.kinds[static_cast<size_t>(id)];
    return kind == TokenKind::normal || kind == TokenKind::user_defined ? id : -1;
  }

  void encode_text(std::string_view text, std::vector<int32_t>& ids) const {
    if (text.empty()) return;
    std::vector<Symbol> symbols;
    symbols.reserve(text.size());
    for (size_t offset = 0; offset < text.size();) {
      const uint32_t length = unicode::decode_utf8(text, offset).length;
      const auto index = static_cast<int32_t>(symbols.size());
      symbols.push_back({static_cast<uint32_t>(offset), length, index - 1, index + 1});
      offset += length;
    }
    symbols.back().next = -1;

    std::priority_queue<Bigram> queue;
    const auto try_add = [&](int32_t left, int32_t right) {
      if (left < 0 || right < 0) return;
      const uint32_t length = symbols[static_cast<size_t>(left)].length + symbols[static_cast<size_t>(right)].length;
      const int32_t id = mergeable(text.substr(symbols[static_cast<size_t>(left)].begin, length));
      if (id >= 0) queue.push({scores_[static_cast<size_t>(id)], left, right, length});
    };
    for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) try_add(i - 1, i);

    while (!queue.empty()) {
      const Bigram bigram = queue.top();
      queue.pop();
      Symbol& left = symbols[static_cast<size_t>(bigram.left)];
      Symbol& right = symbols[static_cast<size_t>(bigram.right)];
      if (left.length == 0 || right.length == 0 || left.length + right.length != bigram.length ||
          left.next != bigram.right) {
        continue;  // stale: one side was merged into something else since
      }
      left.length += right.length;
      right.length = 0;
      left.next = right.next;
      if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = bigram.left;
      try_add(left.prev, bigram.left);
      try_add(bigram.left, left.next);
    }

    for (int32_t i = 0; i >= 0; i = symbols[static_cast<size_t>(i)].next) {
      const Symbol& symbol = symbols[static_cast<size_t>(i)];
      const std::string_view piece = text.substr(symbol.begin, symbol.length);
      const int32_t id = mergeable(piece);
      if (id >= 0) {
        ids.push_back(id);
        continue;
      }
      for (const char byte : piece) {  // byte fallback; <unk> when the vocabulary has no byte pieces
        const int32_t byte_id = byte_ids_[static_cast<uint8_t>(byte)];
        if (byte_id >= 0) ids.push_back(byte_id);
        else if (vocab_.unk >= 0) ids.push_back(vocab_.unk);
      }
    }
  }

  // Text of a non-special token: bytes for <0xNN>, user-defined verbatim, spaces restored in normal pieces.
  std::string token_text(int32_t id) const {
    const std::string& stored = vocab_.pieces[static_cast<size_t>(id)];
    switch (vocab_.kinds[static_cast<size_t>(id)]) {
      case TokenKind::byte:
        return std::string(1, static_cast<char>(parse_byte_piece(stored)));
      case TokenKind::user_defined:
        return stored;
      default: {
        std::string text = stored;
        replace_all(text, space_, " ");
        return text;
      }
    }
  }

  std::vector<float> scores_;  // [vocab_size]
  bool add_space_prefix_;
  std::string space_;
  std::array<int32_t, 256> byte_ids_{};
};

bool optional_bool(const GgufFile& file, const std::string& key, bool fallback) {
  const GgufValue* value = file.find(key);
  return value == nullptr ? fallback : value->as_bool(key);
}

}  // namespace

std::optional<SentencePieceVocab> sentencepiece_vocab(const Tokenizer& tokenizer) {
  const auto* sentencepiece = dynamic_cast<const SentencePieceTokenizer*>(&tokenizer);
  if (sentencepiece == nullptr) return std::nullopt;
  return sentencepiece->gguf_form();
}

std::unique_ptr<VocabTokenizer> load_sentencepiece_llama2c(const fs::path& path, int64_t vocab_size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(concat(path.string(), ": cannot open the tokenizer file"));
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t offset = 0;
  const auto read_bytes = [&](void* out, size_t count, const char* what, int64_t index) {
    if (bytes.size() - offset < count) {
      throw FileError(concat(path.string(), ": truncated llama2.c tokenizer (", what, " of token ", index, " at byte ",
                             offset, " of ", bytes.size(), ")"));
    }
    std::memcpy(out, bytes.data() + offset, count);
    offset += count;
  };
  int32_t max_token_length = 0;
  read_bytes(&max_token_length, 4, "header", -1);
  if (max_token_length <= 0 || max_token_length > (1 << 20)) {
    throw FileError(concat(path.string(), ": not a llama2.c tokenizer (max_token_length ", max_token_length, ")"));
  }
  Vocabulary vocab;
  std::vector<float> scores;
  while (vocab_size == 0 ? offset < bytes.size() : vocab.size() < vocab_size) {
    const int64_t index = vocab.size();
    float score = 0.0f;
    int32_t length = 0;
    read_bytes(&score, 4, "score", index);
    read_bytes(&length, 4, "length", index);
    if (length < 0 || length > max_token_length) {
      throw FileError(concat(path.string(), ": token ", index, " has length ", length, " (max_token_length ",
                             max_token_length, ")"));
    }
    std::string piece(static_cast<size_t>(length), '\0');
    read_bytes(piece.data(), piece.size(), "bytes", index);
    scores.push_back(score);
    vocab.pieces.push_back(std::move(piece));
  }
  if (vocab.size() < 3) throw FileError(concat(path.string(), ": only ", vocab.size(), " tokens (need <unk>, BOS, EOS)"));
  // llama2.c's export writes BOS / EOS as "\n<s>\n" / "\n</s>\n" for printing; the pieces are <s> / </s>.
  for (std::string& piece : vocab.pieces) {
    if (piece == "\n<s>\n" || piece == "\n</s>\n") piece = piece.substr(1, piece.size() - 2);
  }
  vocab.index();
  vocab.unk = 0;
  vocab.bos = 1;
  vocab.eos = 2;
  vocab.kinds[0] = TokenKind::unknown;
  vocab.kinds[1] = vocab.kinds[2] = TokenKind::control;
  vocab.add_bos = true;
  return std::make_unique<SentencePieceTokenizer>(std::move(vocab), std::move(scores), true, " ");
}

std::unique_ptr<VocabTokenizer> load_sentencepiece_gguf(const GgufFile& file) {
  const fs::path& path = file.path();
  Vocabulary vocab = read_gguf_vocab(file);
  const size_t count = vocab.pieces.size();
  std::vector<float> scores(count, 0.0f);
  if (const GgufValue* value = file.find("tokenizer.ggml.scores")) {
    const std::vector<double> values = value->as_floats("tokenizer.ggml.scores");
    if (values.size() != count) {
      throw FileError(concat(path.string(), ": tokenizer.ggml.scores has ", values.size(), " entries for ", count,
                             " tokens"));
    }
    for (size_t i = 0; i < count; ++i) scores[i] = static_cast<float>(values[i]);
  }
  read_gguf_special_ids(file, path, vocab);
  vocab.add_bos = optional_bool(file, "tokenizer.ggml.add_bos_token", true);
  vocab.add_eos = optional_bool(file, "tokenizer.ggml.add_eos_token", false);
  const bool add_space_prefix = optional_bool(file, "tokenizer.ggml.add_space_prefix", true);
  return std::make_unique<SentencePieceTokenizer>(std::move(vocab), std::move(scores), add_space_prefix,
                                                  std::string(kSpaceMarker));
}

}  // namespace jagged::io
