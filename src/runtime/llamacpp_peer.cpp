#include "jagged/llamacpp_peer.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "jagged/error.h"

extern char** environ;

namespace jagged {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr const char* kDriverName = "llamacpp_driver";

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

// Where the driver may be, in the order they are tried.
std::vector<fs::path> driver_candidates() {
  std::vector<fs::path> candidates;
  if (const std::string dir = env("JAGGED_LLAMACPP_DIR"); !dir.empty()) {
    candidates.push_back(fs::path(dir) / kDriverName);
    return candidates;  // an explicit choice is not second-guessed
  }
  std::error_code error;
  const fs::path exe = fs::canonical("/proc/self/exe", error);
  if (!error) {
    candidates.push_back(exe.parent_path() / "llama.cpp" / kDriverName);
    candidates.push_back(exe.parent_path().parent_path() / "llama.cpp" / kDriverName);
  }
  if (const std::string source = env("JAGGED_SOURCE_DIR"); !source.empty()) {
    candidates.push_back(fs::path(source) / "build" / "llama.cpp" / kDriverName);
  }
  return candidates;
}

bool is_executable(const fs::path& path) { return access(path.c_str(), X_OK) == 0 && fs::is_regular_file(path); }

// A private temporary folder, removed when done whatever happens.
class ScratchDir {
 public:
  ScratchDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() / concat("jagged-llamacpp-", getpid(), "-", counter++);
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  fs::path operator/(const char* name) const { return path_ / name; }

 private:
  fs::path path_;
};

// Runs the driver with `args`, its stdout into `report` (its stderr stays the caller's), and parses the report.
Json run_driver(const std::vector<std::string>& args, const fs::path& report) {
  const fs::path driver = llamacpp_driver_path();
  std::vector<std::string> argv_strings{driver.string()};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_strings) argv.push_back(arg.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, report.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, driver.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) throw Error(concat("could not start ", driver.string(), ": ", std::strerror(spawned)));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw Error(concat("waiting for ", driver.string(), ": ", std::strerror(errno)));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw Error(concat("llama.cpp's driver failed (", WIFEXITED(status) ? concat("exit status ", WEXITSTATUS(status))
                                                                        : concat("signal ", WTERMSIG(status)),
                       "; its message is above): ", driver.string()));
  }
  std::ifstream in(report);
  try {
    return Json::parse(in);
  } catch (const Json::exception& error) {
    throw Error(concat("llama.cpp's driver wrote an unreadable report: ", error.what()));
  }
}

void write_sequences(const fs::path& path, const std::vector<std::vector<int32_t>>& sequences) {
  std::ofstream out(path);
  out << Json(sequences).dump();
  if (!out) throw FileError(concat(path.string(), ": could not write the token ids for llama.cpp"));
}

std::string comma_list(const std::vector<int64_t>& values) {
  std::string text;
  for (const int64_t value : values) {
    if (!text.empty()) text += ',';
    text += std::to_string(value);
  }
  return text;
}

void check_gguf(const fs::path& gguf) {
  if (!fs::is_regular_file(gguf)) throw FileError(concat(gguf.string(), ": no such GGUF file"));
}

void check_new_tokens(const std::vector<int64_t>& new_tokens, size_t num_requests) {
  if (num_requests == 0) throw InvalidArgument("llama.cpp decode: no requests");
  if (new_tokens.size() != 1 && new_tokens.size() != num_requests) {
    throw InvalidArgument(concat("llama.cpp decode: ", new_tokens.size(), " new-token counts for ", num_requests,
                                 " requests (give one, or one per request)"));
  }
  for (const int64_t count : new_tokens) {
    if (count < 1) throw InvalidArgument(concat("llama.cpp decode: new-token count ", count, " is below 1"));
  }
}

LlamaCppDecodeResult decode_result(const Json& report) {
  LlamaCppDecodeResult result;
  result.num_requests = report.at("num_requests").get<int>();
  result.kv_unified = report.at("kv_unified").get<bool>();
  result.prompt_tokens = report.at("prompt_tokens").get<int64_t>();
  result.generated_tokens = report.at("generated_tokens").get<int64_t>();
  result.decode_steps = report.at("decode_steps").get<int>();
  result.prefill_seconds = report.at("prefill_seconds").get<double>();
  result.decode_seconds = report.at("decode_seconds").get<double>();
  result.decode_tokens_per_second = report.at("decode_tokens_per_second").get<double>();
  result.generated_tokens_per_second = report.at("generated_tokens_per_second").get<double>();
  result.time_to_first_token_p50 = report.at("time_to_first_token_seconds").at("p50").get<double>();
  result.time_to_first_token_p99 = report.at("time_to_first_token_seconds").at("p99").get<double>();
  result.inter_token_p50 = report.at("inter_token_seconds").at("p50").get<double>();
  result.inter_token_p99 = report.at("inter_token_seconds").at("p99").get<double>();
  if (report.contains("generated_ids")) {
    result.generated_ids = report["generated_ids"].get<std::vector<std::vector<int32_t>>>();
  }
  result.peak_rss_bytes = report.value("peak_rss_bytes", int64_t{0});  // 0 from a driver built before it reported it
  result.report_json = report.dump(2);
  return result;
}

std::vector<std::string> decode_args(const fs::path& gguf, const std::vector<int64_t>& new_tokens,
                                     const LlamaCppDecodeOptions& options) {
  std::vector<std::string> args{"decode",       "--model",   gguf.string(), "--new-tokens", comma_list(new_tokens),
                                "--threads",    std::to_string(options.threads), "--kv-unified",
                                options.kv_unified ? "1" : "0", "--seed", std::to_string(options.seed)};
  if (options.return_ids) args.push_back("--ids");
  if (options.kv_f32) args.insert(args.end(), {"--kv-type", "f32"});
  return args;
}

}  // namespace

std::filesystem::path llamacpp_driver_path() {
  const std::vector<fs::path> candidates = driver_candidates();
  std::string tried;
  for (const fs::path& candidate : candidates) {
    if (is_executable(candidate)) return candidate;
    tried += ' ';
    tried += candidate.string();
  }
  throw InvalidArgument(concat("llama.cpp is not built: run scripts/setup_llamacpp.sh (about 10 minutes; "
                               "JAGGED_LLAMACPP_DIR points at another build). Looked for:", tried));
}

bool llamacpp_available() {
  for (const fs::path& candidate : driver_candidates()) {
    if (is_executable(candidate)) return true;
  }
  return false;
}

LlamaCppPrefillResult run_llamacpp_prefill(const fs::path& gguf, const std::vector<std::vector<int32_t>>& sequences,
                                           const LlamaCppPrefillOptions& options) {
  check_gguf(gguf);
  if (sequences.empty()) throw InvalidArgument("llama.cpp prefill: no sequences");
  for (const auto& sequence : sequences) {
    if (sequence.empty()) throw InvalidArgument("llama.cpp prefill: an empty sequence (llama.cpp needs one token)");
  }
  const ScratchDir scratch;
  write_sequences(scratch / "tokens.json", sequences);
  const Json report = run_driver({"prefill", "--model", gguf.string(), "--tokens", (scratch / "tokens.json").string(),
                                  "--threads", std::to_string(options.threads), "--runs", std::to_string(options.runs),
                                  "--warmup", std::to_string(options.warmup), "--outputs",
                                  (scratch / "logits.f32").string(), "--kv-type", options.kv_f32 ? "f32" : "f16"},
                                 scratch / "report.json");
  LlamaCppPrefillResult result;
  for (const auto& [name, path] : report.at("paths").items()) {
    result.paths.push_back({name, path.at("kv_unified").get<bool>(), path.at("run_seconds").get<std::vector<double>>(),
                            path.at("median_seconds").get<double>()});
  }
  std::ifstream logits(scratch / "logits.f32", std::ios::binary | std::ios::ate);
  const auto bytes = static_cast<size_t>(logits.tellg());
  result.last_logits.resize(bytes / sizeof(float));
  logits.seekg(0);
  logits.read(reinterpret_cast<char*>(result.last_logits.data()), static_cast<std::streamsize>(bytes));
  if (!logits) throw Error("llama.cpp's driver wrote no logits");
  result.peak_rss_bytes = report.value("peak_rss_bytes", int64_t{0});  // 0 from a driver built before it reported it
  result.report_json = report.dump(2);
  return result;
}

LlamaCppDecodeResult run_llamacpp_decode(const fs::path& gguf, const std::vector<int64_t>& prompt_lengths,
                                         const std::vector<int64_t>& new_tokens, const LlamaCppDecodeOptions& options) {
  check_gguf(gguf);
  check_new_tokens(new_tokens, prompt_lengths.size());
  for (const int64_t length : prompt_lengths) {
    if (length < 1) throw InvalidArgument(concat("llama.cpp decode: prompt length ", length, " is below 1"));
  }
  const ScratchDir scratch;
  std::vector<std::string> args = decode_args(gguf, new_tokens, options);
  args.insert(args.end(), {"--prompt-lengths", comma_list(prompt_lengths)});
  return decode_result(run_driver(args, scratch / "report.json"));
}

LlamaCppDecodeResult run_llamacpp_decode(const fs::path& gguf, const std::vector<std::vector<int32_t>>& prompts,
                                         const std::vector<int64_t>& new_tokens, const LlamaCppDecodeOptions& options) {
  check_gguf(gguf);
  check_new_tokens(new_tokens, prompts.size());
  for (const auto& prompt : prompts) {
    if (prompt.empty()) throw InvalidArgument("llama.cpp decode: an empty prompt (llama.cpp needs one token)");
  }
  const ScratchDir scratch;
  write_sequences(scratch / "prompts.json", prompts);
  std::vector<std::string> args = decode_args(gguf, new_tokens, options);
  args.insert(args.end(), {"--prompts", (scratch / "prompts.json").string()});
  return decode_result(run_driver(args, scratch / "report.json"));
}

}  // namespace jagged
