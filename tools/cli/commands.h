// The jagged CLI: one file per command family; each adds its subcommands to the app. main.cpp catches errors.
#pragma once

#include <CLI/CLI.hpp>

namespace jagged::cli {

void add_run_command(CLI::App& app);        // jagged run: greedy / sampled continuation of prompts
void add_parity_command(CLI::App& app);     // jagged parity: nested vs padded vs one-by-one logits
void add_tokenize_commands(CLI::App& app);  // jagged tokenize / detokenize
void add_bench_command(CLI::App& app);      // jagged bench: padded vs nested, per stage, memory, parity
void add_embed_commands(CLI::App& app);     // jagged embed / classify: BERT-family encoders
void add_generate_command(CLI::App& app);   // jagged generate: the engine, streamed, per-request sampling
void add_export_command(CLI::App& app);     // jagged export: a decoder as GGUF for llama.cpp
void add_serve_command(CLI::App& app);      // jagged serve: the OpenAI-compatible HTTP server

// The exit code a command wants when it finishes without an error (parity sets 1 above tolerance).
int& command_exit_code();

}  // namespace jagged::cli
