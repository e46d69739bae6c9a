#include "common.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <system_error>

#include "jagged/paged_kv.h"
#include "jagged/threads.h"

namespace jagged::cli {

namespace fs = std::filesystem;

void add_dtype_option(CLI::App& command, std::string& dtype, const std::string& extra) {
  command
      .add_option("--dtype", dtype,
                  "weights in memory: f32, bf16, q8_0, q4_0, q4_1, q5_0 or q5_1 (f32/f16 tensors are converted; a "
                  "GGUF file's quantized tensors keep their type)" + extra)
      ->capture_default_str();
}

void add_kv_dtype_option(CLI::App& command, DType& kv_dtype) {
  command
      .add_option_function<std::string>(
          "--kv-dtype", [&kv_dtype](const std::string& name) { kv_dtype = parse_kv_dtype(name); },
          "KV cache elements: f32, or bf16 (half the memory and bandwidth)")
      ->check(CLI::IsMember({"f32", "bf16"}))
      ->default_str("f32");
}

LineReader::LineReader(const std::string& path, const std::string& what) {
  if (path == "-") {
    fd_ = STDIN_FILENO;
    name_ = "standard input";
  } else {
    name_ = concat(what, " ", path);
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw FileError(concat(name_, ": cannot open: ", std::strerror(errno)));
    owned_ = true;
  }
  struct stat info {};
  if (::fstat(fd_, &info) == 0 && S_ISDIR(info.st_mode)) {
    if (owned_) ::close(fd_);
    throw FileError(concat(name_, ": is a directory, not a file of lines"));
  }
}

LineReader::~LineReader() {
  if (owned_) ::close(fd_);
}

bool LineReader::next(std::string& line) {
  size_t scanned = start_;  // bytes before this hold no '\n'
  while (true) {
    const size_t newline = buffer_.find('\n', scanned);
    const bool complete = newline != std::string::npos;
    if (complete || (at_end_ && start_ < buffer_.size())) {
      const size_t end = complete ? newline : buffer_.size();
      ++line_number_;
      if (end - start_ > kMaxLineBytes) {
        throw FileError(concat(name_, ": line ", line_number_, " is longer than ", kMaxLineBytes,
                               " bytes, the limit for one input line (a binary file?)"));
      }
      line.assign(buffer_, start_, end - start_);
      start_ = complete ? end + 1 : end;
      return true;
    }
    if (at_end_) return false;
    if (buffer_.size() - start_ > kMaxLineBytes) {
      throw FileError(concat(name_, ": line ", line_number_ + 1, " is longer than ", kMaxLineBytes,
                             " bytes, the limit for one input line (a binary file?)"));
    }
    buffer_.erase(0, start_);
    start_ = 0;
    scanned = buffer_.size();
    char chunk[1 << 16];
    const ssize_t count = ::read(fd_, chunk, sizeof(chunk));
    if (count < 0) {
      if (errno == EINTR) continue;
      throw FileError(concat(name_, ": read error: ", std::strerror(errno)));
    }
    if (count == 0) at_end_ = true;
    buffer_.append(chunk, static_cast<size_t>(count));
  }
}

std::vector<std::string> read_lines(const std::string& path, const std::string& what) {
  LineReader reader(path, what);
  std::vector<std::string> lines;
  for (std::string line; reader.next(line);) lines.push_back(std::move(line));
  return lines;
}

void guard_standard_streams() {
  for (const int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO}) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    // open() returns the lowest free descriptor: this one.
    const int held = ::open("/dev/null", fd == STDIN_FILENO ? O_WRONLY : O_RDONLY);
    if (held >= 0 && held != fd) ::close(held);
  }
}

void check_output() {
  if (std::cout.fail() || std::ferror(stdout)) {
    throw FileError("could not write to standard output (a full disk, or a closed stream?); the output is incomplete");
  }
}

void finish_output() {
  std::cout.flush();
  std::fflush(stdout);
  check_output();
}

void prepare_output_file(const std::string& path, const char* flag) {
  if (path.empty()) return;
  const fs::path file = fs::absolute(path);
  const fs::path parent = file.parent_path();
  std::error_code error;
  fs::create_directories(parent, error);
  if (error || !fs::is_directory(parent) || access(parent.c_str(), W_OK) != 0) {
    throw InvalidArgument(concat(flag, " ", path, ": cannot write in the folder ", parent.string(),
                                 error ? concat(" (", error.message(), ")") : std::string()));
  }
  if (fs::exists(file) && (!fs::is_regular_file(file) || access(file.c_str(), W_OK) != 0)) {
    throw InvalidArgument(concat(flag, " ", path, ": exists and is not a writable regular file"));
  }
}

void write_output_file(const std::string& path, const std::string& text, const char* flag) {
  std::ofstream out(path, std::ios::binary);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) throw FileError(concat(flag, " ", path, ": could not write the file (a full disk?)"));
}

void refuse_overwriting(const std::string& output, const char* flag, const std::vector<std::string>& others) {
  if (output.empty()) return;
  std::error_code error;
  const fs::path target = fs::weakly_canonical(output, error);
  for (const std::string& other : others) {
    if (other.empty()) continue;
    std::error_code other_error;
    const bool same = fs::exists(output) && fs::exists(other) ? fs::equivalent(output, other, other_error)
                                                               : target == fs::weakly_canonical(other, other_error);
    if (same) throw InvalidArgument(concat(flag, " ", output, " would overwrite ", other, ": choose another path"));
  }
}

std::string dump_json(const nlohmann::json& value, int indent) {
  try {
    return value.dump(indent);
  } catch (const nlohmann::json::type_error&) {  // 316: a string is not valid UTF-8
    std::cerr << "jagged: warning: the JSON holds text that is not valid UTF-8 (a file name?): its bad bytes are "
                 "written as U+FFFD\n";
    return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
  }
}

int capped_threads(int requested) {
  const int cores = num_cores();
  if (requested < 0) throw InvalidArgument(concat("--threads must be >= 0 (0: all cores), got ", requested));
  if (requested <= cores) return requested;
  std::cerr << "jagged: warning: --threads " << requested << " is more than the " << cores
            << " cores this process may use; using " << cores << "\n";
  return cores;
}

void check_length_options(const std::string& distribution, bool length_options_given) {
  const bool fixed = distribution == "study" || distribution.rfind("lengths:", 0) == 0;
  if (fixed && length_options_given) {
    throw InvalidArgument(concat("--batch, --min-len and --max-len do not apply to --dist ", distribution,
                                 " (its lengths are fixed); drop them, or use --dist uniform, lognormal, equal, "
                                 "one-long or corpus:FILE"));
  }
}

}  // namespace jagged::cli
