// jagged export: a Llama-family model (a file, or synthetic:NAME) written as one GGUF file for llama.cpp, so its
// tools (llama-server, llama-batched-bench, llama-quantize) run exactly jagged's weights.
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "common.h"
#include "jagged/model_files.h"

namespace jagged::cli {
namespace {

struct ExportArgs {
  std::string model;
  std::string tokenizer;
  std::string gguf;
};

void export_model(const ExportArgs& args) {
  refuse_overwriting(args.gguf, "--gguf", {args.model, args.tokenizer});  // the model is read while it is written
  prepare_output_file(args.gguf, "--gguf");
  const LlamaModel model = open_llama(args.model);
  std::unique_ptr<Tokenizer> tokenizer = open_tokenizer_for(args.model, args.tokenizer, model.config().vocab_size);
  if (tokenizer && tokenizer->kind() != "sentencepiece") {
    std::cerr << "export: the model's tokenizer is " << tokenizer->kind()
              << "; GGUF export writes SentencePiece vocabularies only, so the file gets a synthetic one (token ids "
                 "mean the same, text does not)\n";
    tokenizer.reset();
  }
  export_gguf(model, tokenizer.get(), args.gguf);
  std::cout << "wrote " << args.gguf << " (" << std::filesystem::file_size(args.gguf) / (1024 * 1024) << " MiB, "
            << (tokenizer ? "the model's vocabulary" : "a synthetic vocabulary") << ")\n";
}

}  // namespace

void add_export_command(CLI::App& app) {
  auto args = std::make_shared<ExportArgs>();
  CLI::App* command = app.add_subcommand("export", "write a decoder as one GGUF file for llama.cpp (f32)");
  command->add_option("--model,-m", args->model, "model file/dir or synthetic:NAME")->required();
  command->add_option("--tokenizer", args->tokenizer, "tokenizer (default: the model's own; none for synthetic)");
  command->add_option("--gguf", args->gguf, "the GGUF file to write")->required();
  command->callback([args] { export_model(*args); });
}

}  // namespace jagged::cli
