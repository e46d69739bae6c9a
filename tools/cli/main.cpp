// jagged: run transformer models on ragged batches with no padding. Errors are caught here, at the edge:
// a message on stderr and exit code 1 (2 for bad command-line usage).
#include <cstdio>
#include <exception>
#include <iostream>

#include "commands.h"
#include "common.h"
#include "jagged/error.h"

int& jagged::cli::command_exit_code() {
  static int code = 0;
  return code;
}

int main(int argc, char** argv) {
  jagged::cli::guard_standard_streams();
  CLI::App app{"jagged: transformer inference on nested (ragged) batches, no padding"};
  app.require_subcommand(1);
  jagged::cli::add_run_command(app);
  jagged::cli::add_parity_command(app);
  jagged::cli::add_tokenize_commands(app);
  jagged::cli::add_bench_command(app);
  jagged::cli::add_embed_commands(app);
  jagged::cli::add_generate_command(app);
  jagged::cli::add_export_command(app);
  jagged::cli::add_serve_command(app);
  try {
    app.parse(argc, argv);
    jagged::cli::finish_output();  // output that could not be written is an error, not a silent loss
  } catch (const CLI::ParseError& error) {
    return app.exit(error) == 0 ? 0 : 2;
  } catch (const jagged::Error& error) {
    std::cerr << "jagged: error: " << error.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "jagged: error: out of memory\n";
    return 1;
  } catch (const std::exception& error) {
    std::cerr << "jagged: error: " << error.what() << "\n";
    return 1;
  }
  return jagged::cli::command_exit_code();
}
