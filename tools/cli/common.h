// Helpers shared by CLI commands (frontends use only the public API). Models and tokenizers are opened through
// the library (jagged/model_spec.h), as the Python module opens them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "jagged/dtype.h"
#include "jagged/model_spec.h"

namespace CLI {
class App;
}

namespace jagged::cli {

// --kv-dtype f32|bf16: the KV cache's element type (EngineOptions::kv_dtype), for every command that generates.
void add_kv_dtype_option(CLI::App& command, DType& kv_dtype);
// --dtype: the weights' type in memory (open_llama's dtype), for every command that loads a model; `extra`
// ends the help text.
void add_dtype_option(CLI::App& command, std::string& dtype, const std::string& extra = "");

inline bool is_synthetic(const std::string& spec) { return is_synthetic_spec(spec); }
// "synthetic:NAME" or a model file/directory; dtype: the weights' storage type (--dtype).
inline LlamaModel open_llama(const std::string& spec, const std::string& dtype = "f32") {
  return open_llama_model(spec, dtype);
}
inline BertModel open_bert(const std::string& spec, const std::string& dtype = "f32") {
  return open_bert_model(spec, dtype);
}

// The tokenizer for a model: an explicit path wins; else the one inside or beside the model file; null for
// synthetic models.
inline std::unique_ptr<Tokenizer> open_tokenizer_for(const std::string& model_spec, const std::string& tokenizer_path,
                                                     int64_t vocab_size) {
  return open_model_tokenizer(model_spec, tokenizer_path, vocab_size);
}

// --- Input -----------------------------------------------------------------------------------------------------

// The longest line any command reads (prompts, inputs, standard input): 1 MiB. A longer line is an error, so a
// binary file or /dev/zero given by mistake ends with a message instead of filling memory.
inline constexpr size_t kMaxLineBytes = size_t{1} << 20;

// Reads lines one at a time from a file or, for "-", standard input. A read error (a directory, a closed
// stream) or a line over kMaxLineBytes is a FileError naming `what` ("prompts file"), never an end of input.
// FIFOs and pipes are read as streams (`--prompts <(...)`). Lines keep any '\r'.
class LineReader {
 public:
  LineReader(const std::string& path, const std::string& what);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  bool next(std::string& line);  // false at the end; a last line without '\n' still counts
  int64_t line_number() const { return line_number_; }

 private:
  int fd_ = -1;
  bool owned_ = false;
  std::string name_;  // for messages: "prompts file p.txt", "standard input"
  std::string buffer_;
  size_t start_ = 0;  // first unread byte of buffer_
  bool at_end_ = false;
  int64_t line_number_ = 0;
};

// Every line of a file ("-": standard input), through LineReader.
std::vector<std::string> read_lines(const std::string& path, const std::string& what);

// --- Output ----------------------------------------------------------------------------------------------------

// A closed standard stream would be taken by the next file opened (the model read as standard input, a JSON
// report receiving the printed text): main() calls this first, so that each closed one holds /dev/null opened
// the wrong way round and reading or writing it fails with an error.
void guard_standard_streams();

// FileError when standard output (std::cout or C stdio) could not be written so far (a full disk, a closed
// stream). Loops that print as they go call it to stop early.
void check_output();
// Flushes std::cout and stdout, then check_output(). main() calls it after every command.
void finish_output();

// An output file named by `flag` (--json, --plot): creates its missing parent folders and checks, before any
// work is done, that the file can be written there. Creates no file.
void prepare_output_file(const std::string& path, const char* flag);
// Writes `text` to `path` whole, FileError naming `flag` when any byte could not be written.
void write_output_file(const std::string& path, const std::string& text, const char* flag);
// InvalidArgument when `output` is the same file as one of `inputs` (the model, a data file) or another output.
void refuse_overwriting(const std::string& output, const char* flag, const std::vector<std::string>& others);

// JSON text of `value`; strings that are not valid UTF-8 (a model path with a Latin-1 byte) are written with
// U+FFFD in place of the bad bytes, with a warning, instead of failing at the end of a run.
std::string dump_json(const nlohmann::json& value, int indent);

// --- Options ---------------------------------------------------------------------------------------------------

// `requested` threads (0: all cores), capped at the cores this process may run on, with a warning: more threads
// than cores only take turns and can run for minutes.
int capped_threads(int requested);

// InvalidArgument when --batch / --min-len / --max-len were given with a --dist that ignores them (study,
// lengths:FILE), instead of measuring something else than asked.
void check_length_options(const std::string& distribution, bool length_options_given);

}  // namespace jagged::cli
