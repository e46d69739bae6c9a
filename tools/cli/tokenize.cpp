// jagged tokenize / detokenize: text lines on stdin to token-id lines on stdout, and back.
//
//   jagged tokenize --tokenizer PATH [--special] [--json] < text     one line of ids per input line
//   jagged detokenize --tokenizer PATH [--json] < ids                one line of text per line of ids
//
// Input lines are at most 1 MiB (kMaxLineBytes); a read error or a longer line is an error.
//
// PATH: a tokenizer.json, vocab.txt, GGUF, or llama2.c tokenizer .bin. --model PATH instead takes the model's
// own tokenizer: tokenizer.json / vocab.txt / tokenizer.bin in a Hugging Face directory, the vocabulary inside a
// GGUF, or tokenizer.bin / tok<vocab_size>.bin beside a llama2.c checkpoint (vocab_size read from its header).
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.h"
#include "common.h"
#include "jagged/error.h"
#include "jagged/tokenizer.h"

namespace jagged::cli {
namespace {

namespace fs = std::filesystem;

struct TokenizeArgs {
  std::string tokenizer;
  std::string model;
  int64_t vocab_size = 0;
  bool special = false;
  bool json = false;
};

// vocab_size from a llama2.c checkpoint's header (seven int32; the sixth, negative when the classifier is not
// shared); 0 when the file is not one.
int64_t llama2c_vocab_size(const fs::path& path) {
  if (!fs::is_regular_file(path) || path.extension() == ".gguf") return 0;
  std::ifstream in(path, std::ios::binary);
  int32_t header[7] = {};
  if (!in.read(reinterpret_cast<char*>(header), sizeof header)) return 0;
  return std::abs(static_cast<int64_t>(header[5]));
}

std::unique_ptr<Tokenizer> open(const TokenizeArgs& args) {
  if (args.tokenizer.empty() == args.model.empty()) {
    throw InvalidArgument("give exactly one of --tokenizer PATH and --model PATH");
  }
  if (!args.tokenizer.empty()) return load_tokenizer(args.tokenizer, args.vocab_size);
  const int64_t vocab_size = args.vocab_size > 0 ? args.vocab_size : llama2c_vocab_size(args.model);
  std::unique_ptr<Tokenizer> tokenizer = open_tokenizer_for(args.model, "", vocab_size);
  if (tokenizer == nullptr) throw InvalidArgument(concat(args.model, " has no tokenizer"));
  return tokenizer;
}

void tokenize(const TokenizeArgs& args) {
  const std::unique_ptr<Tokenizer> tokenizer = open(args);
  std::ios::sync_with_stdio(false);
  LineReader input("-", "standard input");
  for (std::string line; input.next(line);) {
    check_output();
    const std::vector<int32_t> ids = tokenizer->encode(line, args.special, args.special);
    if (args.json) {
      std::cout << nlohmann::json(ids).dump() << "\n";
      continue;
    }
    for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
    std::cout << "\n";
  }
}

// Ids separated by spaces or commas, optionally in [ ] (what tokenize prints, either way).
std::vector<int32_t> parse_ids(const std::string& line, int64_t line_number) {
  std::string cleaned = line;
  for (char& c : cleaned) {
    if (c == '[' || c == ']' || c == ',') c = ' ';
  }
  std::istringstream in(cleaned);
  std::vector<int32_t> ids;
  for (std::string word; in >> word;) {
    char* end = nullptr;
    const long long value = std::strtoll(word.c_str(), &end, 10);
    if (end == word.c_str() || *end != '\0' || value < INT32_MIN || value > INT32_MAX) {
      throw InvalidArgument(concat("detokenize: line ", line_number, ": '", word, "' is not a token id"));
    }
    ids.push_back(static_cast<int32_t>(value));
  }
  return ids;
}

void detokenize(const TokenizeArgs& args) {
  const std::unique_ptr<Tokenizer> tokenizer = open(args);
  std::ios::sync_with_stdio(false);
  LineReader input("-", "standard input");
  for (std::string line; input.next(line);) {
    check_output();
    const std::string text = tokenizer->decode(parse_ids(line, input.line_number()));
    if (args.json) {
      std::cout << nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
      std::cout << text << "\n";
    }
  }
}

void add_source_options(CLI::App* command, TokenizeArgs& args) {
  command->add_option("--tokenizer,-t", args.tokenizer, "tokenizer.json, vocab.txt, .gguf or llama2.c tokenizer .bin");
  command->add_option("--model,-m", args.model,
                      "use the model's tokenizer: Hugging Face directory, .gguf, or llama2.c checkpoint (then "
                      "tokenizer.bin / tok<vocab_size>.bin beside it)");
  command->add_option("--vocab-size", args.vocab_size, "entries of a llama2.c tokenizer .bin (default: all)");
}

}  // namespace

void add_tokenize_commands(CLI::App& app) {
  auto tokenize_args = std::make_shared<TokenizeArgs>();
  CLI::App* encode = app.add_subcommand(
      "tokenize", "token ids of each stdin line, space separated, one line per input line");
  add_source_options(encode, *tokenize_args);
  encode->add_flag("--special", tokenize_args->special,
                   "add BOS / [CLS] ... [SEP] as the model does, and read special tokens written in the text");
  encode->add_flag("--json", tokenize_args->json, "print each line's ids as a JSON array");
  encode->callback([tokenize_args] { tokenize(*tokenize_args); });

  auto detokenize_args = std::make_shared<TokenizeArgs>();
  CLI::App* decode = app.add_subcommand(
      "detokenize", "text of each stdin line of token ids (space or comma separated, [ ] optional); specials skipped");
  add_source_options(decode, *detokenize_args);
  decode->add_flag("--json", detokenize_args->json, "print each text as a JSON string");
  decode->callback([detokenize_args] { detokenize(*detokenize_args); });
}

}  // namespace jagged::cli
