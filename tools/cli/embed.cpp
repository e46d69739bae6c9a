// jagged embed / jagged classify: BERT-family encoders over a file of inputs, one per line, run in nested
// batches (no padding). embed prints one pooled (by default L2-normalised) embedding per input; classify prints
// each input's label and logits.
#include <charconv>
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "common.h"
#include "jagged/bert.h"

namespace jagged::cli {
namespace {

struct EncoderArgs {
  std::string model;
  std::string tokenizer;
  std::string inputs;
  bool ids = false;          // inputs are lines of token ids
  bool truncate = false;     // the default; the flag only documents it
  bool reject_long = false;
  bool json = false;
  int64_t batch_size = 64;
};

struct EmbedArgs {
  EncoderArgs encoder;
  std::string pooling = "mean";
  bool normalize = true;
};

// The inputs, one per line ("-": standard input), without a trailing '\r'.
std::vector<std::string> read_inputs(const std::string& path) {
  std::vector<std::string> lines = read_lines(path, "inputs file");
  for (std::string& line : lines) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
  }
  return lines;
}

std::vector<int32_t> parse_ids(const std::string& line, size_t line_number, int64_t vocab_size) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (true) {
    pos = line.find_first_not_of(" \t", pos);
    if (pos == std::string::npos) break;
    const size_t end = std::min(line.find_first_of(" \t", pos), line.size());
    int32_t id = 0;
    const auto [stop, error] = std::from_chars(line.data() + pos, line.data() + end, id);
    if (error != std::errc() || stop != line.data() + end || id < 0 || id >= vocab_size) {
      throw InvalidArgument(concat("inputs line ", line_number, ": '", line.substr(pos, end - pos),
                                   "' is not a token id in [0, ", vocab_size, ")"));
    }
    ids.push_back(id);
    pos = end;
  }
  return ids;
}

// Every input's token ids, each at most the model's context long: truncated (keeping a final [SEP]) with a
// warning, or rejected.
std::vector<std::vector<int32_t>> tokenize_inputs(const EncoderArgs& args, const BertConfig& config) {
  const std::unique_ptr<Tokenizer> tokenizer =
      args.ids ? nullptr : open_tokenizer_for(args.model, args.tokenizer, config.vocab_size);
  if (!args.ids && tokenizer == nullptr) {
    throw InvalidArgument(concat(args.model, " has no tokenizer: pass --tokenizer, or --ids with token-id inputs"));
  }
  if (tokenizer != nullptr && (tokenizer->bos_id() < 0 || tokenizer->eos_id() < 0)) {
    throw InvalidArgument(concat("the tokenizer of ", args.model, " has no ", tokenizer->bos_id() < 0 ? "[CLS]" : "[SEP]",
                                 " token: an encoder's input is [CLS] text [SEP] (pass another --tokenizer, or --ids)"));
  }
  const std::vector<std::string> lines = read_inputs(args.inputs);
  std::vector<std::vector<int32_t>> inputs;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::vector<int32_t> ids = tokenizer ? tokenizer->encode(lines[i], /*add_special=*/true)
                                         : parse_ids(lines[i], i + 1, config.vocab_size);
    const int64_t length = static_cast<int64_t>(ids.size());
    if (length > config.context_length) {
      if (args.reject_long) {
        throw InvalidArgument(concat("inputs line ", i + 1, " has ", length, " tokens, more than the model's context ",
                                     config.context_length, " (drop --reject-long to truncate)"));
      }
      const bool ends_with_sep = tokenizer != nullptr && ids.back() == tokenizer->eos_id();
      const int32_t last = ids.back();
      ids.resize(static_cast<size_t>(config.context_length));
      if (ends_with_sep) ids.back() = last;
      std::cerr << "jagged: warning: inputs line " << i + 1 << " has " << length << " tokens; truncated to the context "
                << config.context_length << "\n";
    }
    inputs.push_back(std::move(ids));
  }
  return inputs;
}

// InvalidArgument for an input with no tokens (an empty --ids line): pooling nothing gives no meaning.
void require_tokens(const std::vector<std::vector<int32_t>>& inputs, const char* verb) {
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].empty()) throw InvalidArgument(concat("inputs line ", i + 1, " has no tokens: nothing to ", verb));
  }
}

// Runs `body` on consecutive nested batches of at most batch_size inputs; body(batch, first input index).
template <typename Body>
void for_each_batch(const std::vector<std::vector<int32_t>>& inputs, int64_t batch_size, const Body& body) {
  if (batch_size <= 0) throw InvalidArgument(concat("--batch-size must be positive, got ", batch_size));
  for (size_t first = 0; first < inputs.size(); first += static_cast<size_t>(batch_size)) {
    const size_t end = std::min(inputs.size(), first + static_cast<size_t>(batch_size));
    std::vector<int32_t> ids;
    std::vector<int64_t> lengths;
    for (size_t i = first; i < end; ++i) {
      ids.insert(ids.end(), inputs[i].begin(), inputs[i].end());
      lengths.push_back(static_cast<int64_t>(inputs[i].size()));
    }
    const NestedTensor batch(Tensor::from_ints(ids, {static_cast<int64_t>(ids.size())}),
                             cu_seqlens_from_lengths(lengths));
    body(batch, first);
  }
}

// The shortest text that reads back as the same float (valid JSON for finite values).
std::string format_float(float value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

void print_row(const float* values, int64_t count, bool json) {
  for (int64_t i = 0; i < count; ++i) {
    std::cout << (i == 0 ? "" : json ? "," : " ") << format_float(values[i]);
  }
}

void embed(const EmbedArgs& args) {
  const Pooling pooling = parse_pooling(args.pooling);
  const BertModel model = open_bert(args.encoder.model);
  const std::vector<std::vector<int32_t>> inputs = tokenize_inputs(args.encoder, model.config());
  require_tokens(inputs, "embed");
  const int64_t dim = model.config().model_dim;
  const bool json = args.encoder.json;
  if (json) std::cout << "[";
  for_each_batch(inputs, args.encoder.batch_size, [&](const NestedTensor& batch, size_t first) {
    check_output();
    const Tensor embeddings = model.embed(batch, pooling, args.normalize);  // [num_seqs, model_dim]
    for (int64_t seq = 0; seq < batch.num_seqs(); ++seq) {
      if (json) std::cout << (first + seq == 0 ? "\n[" : ",\n[");
      print_row(embeddings.data<float>() + seq * dim, dim, json);
      std::cout << (json ? "]" : "\n");
    }
  });
  if (json) std::cout << (inputs.empty() ? "]\n" : "\n]\n");
}

void classify(const EncoderArgs& args) {
  const BertModel model = open_bert(args.model);
  const BertConfig& config = model.config();
  if (!model.has_classifier()) {
    throw InvalidArgument(concat(args.model, " has no sequence-classification head (num_labels is 0): use embed"));
  }
  const std::vector<std::vector<int32_t>> inputs = tokenize_inputs(args, config);
  require_tokens(inputs, "classify");
  const int64_t num_labels = config.num_labels;
  auto label_name = [&](int64_t label) {
    return config.labels.empty() ? concat("LABEL_", label) : config.labels[static_cast<size_t>(label)];
  };
  if (args.json) std::cout << "[";
  for_each_batch(inputs, args.batch_size, [&](const NestedTensor& batch, size_t first) {
    check_output();
    const Tensor logits = model.classify(batch);  // [num_seqs, num_labels]
    for (int64_t seq = 0; seq < batch.num_seqs(); ++seq) {
      const float* row = logits.data<float>() + seq * num_labels;
      const int64_t best = std::max_element(row, row + num_labels) - row;
      if (args.json) {
        std::cout << (first + seq == 0 ? "\n" : ",\n") << "{\"label\": " << nlohmann::json(label_name(best)).dump()
                  << ", \"label_id\": " << best << ", \"logits\": [";
        print_row(row, num_labels, true);
        std::cout << "]}";
      } else {
        std::cout << label_name(best) << "\t";
        print_row(row, num_labels, false);
        std::cout << "\n";
      }
    }
  });
  if (args.json) std::cout << (inputs.empty() ? "]\n" : "\n]\n");
}

void add_encoder_options(CLI::App* command, EncoderArgs& args) {
  std::string synthetic;
  for (const auto& name : BertModel::synthetic_names()) synthetic += (synthetic.empty() ? "" : ", ") + name;
  command->add_option("--model,-m", args.model,
                      "BERT-family model: Hugging Face dir, .gguf, or synthetic:NAME (" + synthetic + ")")
      ->required();
  command->add_option("--inputs,-i", args.inputs,
                      "file with one input per line ('-': stdin; at most 1 MiB a line). Text is tokenized by the model's WordPiece tokenizer "
                      "with [CLS] ... [SEP] (an empty line gives [CLS] [SEP]). Synthetic models have no tokenizer: "
                      "give --ids, and each line is space-separated token ids used as they are")
      ->required();
  command->add_option("--tokenizer", args.tokenizer, "tokenizer file (default: the model's tokenizer.json/vocab.txt)");
  command->add_flag("--ids", args.ids, "inputs are lines of space-separated token ids (no [CLS]/[SEP] added)");
  CLI::Option* truncate = command->add_flag(
      "--truncate", args.truncate,
      "inputs longer than the context are truncated, keeping a final [SEP], with a warning on stderr (the default)");
  CLI::Option* reject = command->add_flag("--reject-long", args.reject_long, "fail on inputs longer than the context");
  truncate->excludes(reject);
  command->add_flag("--json", args.json, "print one JSON array instead of one line per input");
  command->add_option("--batch-size", args.batch_size, "inputs per nested batch")->capture_default_str();
}

}  // namespace

void add_embed_commands(CLI::App& app) {
  auto embed_args = std::make_shared<EmbedArgs>();
  CLI::App* embed_command = app.add_subcommand(
      "embed", "sentence embeddings from a BERT-family encoder: one line of space-separated floats per input");
  add_encoder_options(embed_command, embed_args->encoder);
  embed_command->add_option("--pool", embed_args->pooling, "pooling over each input's tokens")
      ->check(CLI::IsMember({"mean", "cls", "max"}))
      ->capture_default_str();
  embed_command->add_flag("--normalize,!--no-normalize", embed_args->normalize,
                          "divide each embedding by its L2 norm (default: on)");
  embed_command->callback([embed_args] { embed(*embed_args); });

  auto classify_args = std::make_shared<EncoderArgs>();
  CLI::App* classify_command = app.add_subcommand(
      "classify", "sequence classification with a BERT-family model: per input its label (id2label name, else "
                  "LABEL_<id>), a tab, and the logits");
  add_encoder_options(classify_command, *classify_args);
  classify_command->callback([classify_args] { classify(*classify_args); });
}

}  // namespace jagged::cli
