// Fuzzes encode / decode on arbitrary bytes with small tokenizers of every kind, written at start-up: byte-level
// BPE with each pre-tokenizer (plus NFC), a llama2.c SentencePiece vocabulary with byte fallback, SentencePiece
// conversions in tokenizer.json (Llama 2's normalizer with byte fallback; a Metaspace that splits, with fused
// unknown tokens), a WordPiece vocab.txt. Checks: ids in range; decode(encode(bytes)) == bytes for BPE (NFC aside)
// and SentencePiece, whatever the bytes (for tokenizer.json, bytes without a written U+2581, which decodes as a
// space); the pre-tokenizers cover the input; NFC / NFD are idempotent and agree.
#include <nlohmann/json.hpp>

#include "io/tokenizer_pretokenize.h"
#include "io/unicode.h"
#include "tokenizer_fuzz_common.h"

namespace {

using jagged::Tokenizer;

std::string byte_level(uint8_t byte) {  // GPT-2's bytes_to_unicode for one byte, as UTF-8
  char32_t code_point = byte;
  if (!((byte >= 0x21 && byte <= 0x7E) || (byte >= 0xA1 && byte <= 0xAC) || byte >= 0xAE)) {
    code_point = 256;
    for (uint32_t b = 0; b < byte; ++b) code_point += !((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE);
  }
  std::string out;
  jagged::io::unicode::append_utf8(out, code_point);
  return out;
}

std::unique_ptr<Tokenizer> bpe(const std::string& split_regex, bool nfc) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int byte = 0; byte < 256; ++byte) vocab[byte_level(static_cast<uint8_t>(byte))] = byte;
  const std::vector<std::pair<std::string, std::string>> merges{
      {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {byte_level(' '), "hello"}, {"1", "2"}, {byte_level(0xC3), byte_level(0xA4)}};
  nlohmann::json merge_list = nlohmann::json::array();
  for (const auto& [left, right] : merges) {
    if (!vocab.contains(left + right)) vocab[left + right] = vocab.size();
    merge_list.push_back({left, right});
  }
  nlohmann::json pre = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", split_regex.empty()}};
  if (!split_regex.empty()) {
    pre = {{"type", "Sequence"},
           {"pretokenizers",
            {{{"type", "Split"}, {"pattern", {{"Regex", split_regex}}}, {"behavior", "Isolated"}, {"invert", false}},
             pre}}};
  }
  const nlohmann::json root = {
      {"added_tokens", {{{"id", vocab.size()}, {"content", "<|end|>"}, {"special", true}},
                        {{"id", vocab.size() + 1}, {"content", "<tool>"}, {"special", false}}}},
      {"normalizer", nfc ? nlohmann::json{{"type", "NFC"}} : nlohmann::json()},
      {"pre_tokenizer", pre},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merge_list}}}};
  const std::string text = root.dump();
  const auto path = jagged::fuzz::write_scratch(nfc ? "bpe_nfc.json" : "bpe.json",
                                                reinterpret_cast<const uint8_t*>(text.data()), text.size());
  return jagged::load_tokenizer(path);
}

std::unique_ptr<Tokenizer> sentencepiece() {
  std::string bytes;
  const auto put = [&](const void* data, size_t size) { bytes.append(static_cast<const char*>(data), size); };
  const int32_t max_length = 16;
  put(&max_length, 4);
  std::vector<std::string> pieces{"<unk>", "\n<s>\n", "\n</s>\n"};
  for (int byte = 0; byte < 256; ++byte) {
    pieces.push_back(jagged::concat("<0x", "0123456789ABCDEF"[byte / 16], "0123456789ABCDEF"[byte % 16], ">"));
  }
  for (const char* piece : {" ", "a", "b", " a", "ab", " ab", "\xC3\xA4", " \xC3\xA4", "<", "s", ">"}) pieces.push_back(piece);
  for (size_t i = 0; i < pieces.size(); ++i) {
    const float score = -static_cast<float>(i);
    const auto length = static_cast<int32_t>(pieces[i].size());
    put(&score, 4);
    put(&length, 4);
    put(pieces[i].data(), pieces[i].size());
  }
  const auto path = jagged::fuzz::write_scratch("tok.bin", reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  return jagged::load_tokenizer(path);
}

// Llama 2's pipeline (Prepend + Replace normalizer, byte fallback, Strip decoder), or with `metaspace` a
// Metaspace pre-tokenizer (prepend first, split) and no byte pieces: unknown characters become one fused <unk>.
std::unique_ptr<Tokenizer> sentencepiece_json(bool metaspace) {
  nlohmann::json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  if (!metaspace) {
    for (int byte = 0; byte < 256; ++byte) {
      vocab[jagged::concat("<0x", "0123456789ABCDEF"[byte / 16], "0123456789ABCDEF"[byte % 16], ">")] = vocab.size();
    }
  }
  for (const char* piece : {"\xE2\x96\x81", "a", "b", "\xE2\x96\x81" "a", "ab", "\xE2\x96\x81" "ab", "\xC3\xA4"}) {
    vocab[piece] = vocab.size();
  }
  const nlohmann::json merges = nlohmann::json::array(  // arrays, as {{"a", "b"}} would be an object
      {nlohmann::json::array({"a", "b"}), nlohmann::json::array({"\xE2\x96\x81", "ab"}),
       nlohmann::json::array({"\xE2\x96\x81", "a"})});
  const nlohmann::json added = {{{"id", 0}, {"content", "<unk>"}, {"special", true}},
                                {{"id", 1}, {"content", "<s>"}, {"special", true}},
                                {{"id", 2}, {"content", "</s>"}, {"special", true}}};
  const nlohmann::json space = {{"String", "\xE2\x96\x81"}};
  nlohmann::json root = {
      {"added_tokens", added},
      {"normalizer", {{"type", "Sequence"}, {"normalizers", {{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
                                                             {{"type", "Replace"}, {"pattern", {{"String", " "}}},
                                                              {"content", "\xE2\x96\x81"}}}}}},
      {"pre_tokenizer", nullptr},
      {"post_processor", nullptr},
      {"decoder", {{"type", "Sequence"}, {"decoders", {{{"type", "Replace"}, {"pattern", space}, {"content", " "}},
                                                       {{"type", "ByteFallback"}}, {{"type", "Fuse"}},
                                                       {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
      {"model", {{"type", "BPE"}, {"unk_token", "<unk>"}, {"byte_fallback", !metaspace}, {"fuse_unk", true},
                 {"vocab", vocab}, {"merges", merges}}}};
  if (metaspace) {
    root["normalizer"] = nullptr;
    root["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "first"},
                             {"split", true}};
  }
  const std::string text = root.dump();
  const auto path = jagged::fuzz::write_scratch(metaspace ? "spm_metaspace.json" : "spm.json",
                                                reinterpret_cast<const uint8_t*>(text.data()), text.size());
  return jagged::load_tokenizer(path);
}

std::unique_ptr<Tokenizer> wordpiece() {
  const std::string vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\na\nab\n##b\n##ab\n.\n\xE4\xB8\xAD\n";
  const auto path = jagged::fuzz::write_scratch("vocab.txt", reinterpret_cast<const uint8_t*>(vocab.data()), vocab.size());
  return jagged::load_tokenizer(path);
}

struct Tokenizers {
  std::vector<std::unique_ptr<Tokenizer>> round_trip;  // decode(encode(x)) == x for every x
  std::unique_ptr<Tokenizer> bpe_nfc;
  std::unique_ptr<Tokenizer> sentencepiece_json;           // round trip unless the text holds U+2581
  std::unique_ptr<Tokenizer> sentencepiece_json_metaspace;  // no byte pieces: no round trip
  std::unique_ptr<Tokenizer> wordpiece;
};

const Tokenizers& tokenizers() {
  static const Tokenizers all = [] {
    Tokenizers result;
    result.round_trip.push_back(bpe("", false));
    for (const auto kind : {jagged::io::PreTokenizer::llama3, jagged::io::PreTokenizer::qwen2}) {
      result.round_trip.push_back(bpe(std::string(jagged::io::pre_tokenizer_regex(kind)), false));
    }
    result.round_trip.push_back(sentencepiece());
    result.bpe_nfc = bpe(std::string(jagged::io::pre_tokenizer_regex(jagged::io::PreTokenizer::qwen2)), true);
    result.sentencepiece_json = sentencepiece_json(false);
    result.sentencepiece_json_metaspace = sentencepiece_json(true);
    result.wordpiece = wordpiece();
    return result;
  }();
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace unicode = jagged::io::unicode;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const Tokenizers& all = tokenizers();
  for (const auto& tokenizer : all.round_trip) {
    jagged::fuzz::exercise(*tokenizer, text);
    if (tokenizer->decode(tokenizer->encode(text, false)) != text) __builtin_trap();
    if (tokenizer->decode(tokenizer->encode(text, true)) != text) __builtin_trap();
  }
  jagged::fuzz::exercise(*all.bpe_nfc, text);
  jagged::fuzz::exercise(*all.sentencepiece_json, text);
  jagged::fuzz::exercise(*all.sentencepiece_json_metaspace, text);
  if (text.find("\xE2\x96\x81") == std::string_view::npos &&
      all.sentencepiece_json->decode(all.sentencepiece_json->encode(text, false)) != text) {
    __builtin_trap();
  }
  jagged::fuzz::exercise(*all.wordpiece, text);

  for (const auto kind : {jagged::io::PreTokenizer::gpt2, jagged::io::PreTokenizer::llama3, jagged::io::PreTokenizer::qwen2}) {
    uint32_t expected = 0;
    for (const auto& [begin, end] : jagged::io::pre_tokenize(text, kind)) {
      if (begin != expected || end <= begin) __builtin_trap();
      expected = end;
    }
    if (expected != text.size()) __builtin_trap();
  }
  const std::u32string code_points = unicode::to_code_points(text);
  const std::u32string composed = unicode::nfc(code_points);
  const std::u32string decomposed = unicode::nfd(code_points);
  if (unicode::nfc(composed) != composed || unicode::nfd(decomposed) != decomposed) __builtin_trap();
  if (unicode::nfd(composed) != decomposed || unicode::nfc(decomposed) != composed) __builtin_trap();
  return 0;
}
