#include "bench_target.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "bench_report.h"
#include "common.h"
#include "jagged/model_files.h"

namespace jagged::cli {
namespace {

namespace fs = std::filesystem;

const char* kPython = "/usr/bin/python3";  // Debian's python, where python3-torch lives

// Per-layer and head FLOPs of a Llama forward over `rows` positions with `pairs` attention score pairs.
double llama_flops(const LlamaConfig& c, double rows, double pairs, double head_rows) {
  const double q_dim = double{1.0} * c.num_heads * c.head_dim;
  const double kv_dim = double{1.0} * c.num_kv_heads * c.head_dim;
  const double dim = static_cast<double>(c.model_dim), ffn = static_cast<double>(c.ffn_dim);
  const double linear = 2.0 * rows * (dim * (q_dim + 2 * kv_dim) + q_dim * dim + dim * 2 * ffn + ffn * dim);
  const double attention = 4.0 * c.head_dim * c.num_heads * pairs;
  return c.num_layers * (linear + attention) + 2.0 * head_rows * dim * static_cast<double>(c.vocab_size);
}

fs::path source_dir() {
  // The bench scripts live beside the binary's source tree: build/jagged -> <repo>/bench.
  const char* override_dir = std::getenv("JAGGED_SOURCE_DIR");
  if (override_dir != nullptr) return override_dir;
  return fs::canonical("/proc/self/exe").parent_path().parent_path();
}

std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (const char ch : text) quoted += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return quoted + "'";
}

}  // namespace

BenchTarget open_bench_target(const std::string& model_spec, const std::string& tokenizer_path, bool last_token_logits) {
  auto model = std::make_shared<LlamaModel>(open_llama(model_spec));
  const LlamaConfig config = model->config();
  BenchTarget target;
  target.family = "llama";
  target.vocab_size = config.vocab_size;
  target.context_length = config.context_length;
  target.tokenizer = open_tokenizer_for(model_spec, tokenizer_path, config.vocab_size);
  target.forward = [model, last_token_logits](const NestedTensor& batch, BatchLayout layout, StageProfile* profile) {
    return model->forward(batch, {layout, last_token_logits, profile});
  };
  target.flops = [config, last_token_logits](const std::vector<int64_t>& lengths, BatchLayout layout) {
    double tokens = 0, causal_pairs = 0, longest = 0;
    for (const int64_t length : lengths) {
      tokens += static_cast<double>(length);
      causal_pairs += 0.5 * static_cast<double>(length) * static_cast<double>(length + 1);
      longest = std::max(longest, static_cast<double>(length));
    }
    const double seqs = static_cast<double>(lengths.size());
    const double head_rows = last_token_logits ? seqs : tokens;  // the padded twin also drops padding before the head
    if (layout == BatchLayout::nested) return llama_flops(config, tokens, causal_pairs, head_rows);
    return llama_flops(config, seqs * longest, seqs * longest * longest, last_token_logits ? seqs : seqs * longest);
  };
  target.export_for_torch = [model](const fs::path& directory) { export_huggingface(*model, directory); };
  target.torch_script = "bench/torch_llama.py";
  target.torch_args = last_token_logits ? "" : " --all-logits";
  return target;
}

void check_torch_available() {
  const std::string command = std::string(kPython) + " -c 'import torch' >/dev/null 2>&1";
  if (std::system(command.c_str()) != 0) {
    throw InvalidArgument(concat("--compare-torch needs PyTorch in ", kPython,
                                 " (Debian's python3-torch and libopenblas0-openmp: run scripts/setup.sh)"));
  }
}

nlohmann::json compare_with_torch(const BenchTarget& target, const NestedTensor& batch, const Tensor& nested_output,
                                  const BenchReport& report, int runs, int warmup) {
  const fs::path work = fs::temp_directory_path() / concat("jagged-torch-", getpid());
  fs::create_directories(work);
  target.export_for_torch(work / "model");
  {
    nlohmann::json tokens = nlohmann::json::array();
    for (int64_t seq = 0; seq < batch.num_seqs(); ++seq) {
      const int32_t* ids = batch.sequence(seq).as<int32_t>();
      tokens.push_back(std::vector<int32_t>(ids, ids + batch.seqlen(seq)));
    }
    std::ofstream(work / "tokens.json") << tokens.dump();
  }
  const fs::path script = source_dir() / target.torch_script;
  const std::string command = concat(kPython, " ", shell_quote(script.string()), " --model-dir ",
                                     shell_quote((work / "model").string()), " --tokens ",
                                     shell_quote((work / "tokens.json").string()), " --threads ", report.threads,
                                     " --runs ", runs, " --warmup ", warmup, " --json ",
                                     shell_quote((work / "torch.json").string()), " --outputs ",
                                     shell_quote((work / "torch_outputs.f32").string()), target.torch_args, " 1>&2");
  std::cerr << "running PyTorch: " << command << "\n";
  if (std::system(command.c_str()) != 0) throw Error(concat("the PyTorch benchmark failed: ", command));
  nlohmann::json torch;
  std::ifstream(work / "torch.json") >> torch;
  std::vector<float> outputs(static_cast<size_t>(nested_output.numel()));
  std::ifstream in(work / "torch_outputs.f32", std::ios::binary);
  in.read(reinterpret_cast<char*>(outputs.data()), static_cast<std::streamsize>(outputs.size() * sizeof(float)));
  if (!in) throw Error(concat("PyTorch's outputs ", (work / "torch_outputs.f32").string(), " are missing or short"));
  const ParityStats parity = compare_outputs(nested_output.data<float>(), outputs.data(), nested_output.numel());
  const double nested_seconds = report.nested.median_seconds();
  nlohmann::json ratios = nlohmann::json::object();
  double fastest = 1e300;
  for (const auto& [path, result] : torch["paths"].items()) {
    if (!result.contains("median_seconds")) continue;
    const double seconds = result["median_seconds"].get<double>();
    ratios[path] = seconds / nested_seconds;
    fastest = std::min(fastest, seconds);
  }
  torch["jagged_speedup_over"] = ratios;
  torch["jagged_speedup_over_fastest"] = fastest / nested_seconds;
  torch["parity_vs_jagged"] = {{"max_abs", parity.max_abs}, {"max_rel", parity.max_rel}};
  std::printf("\nPyTorch (same weights, batch and threads):\n");
  for (const auto& [path, result] : torch["paths"].items()) {
    if (result.contains("median_seconds")) {
      std::printf("  %-12s %9.1f ms  %8.0f real tokens/s   jagged nested is %.2fx faster\n", path.c_str(),
                  result["median_seconds"].get<double>() * 1e3, report.real_tokens / result["median_seconds"].get<double>(),
                  result["median_seconds"].get<double>() / nested_seconds);
    } else {
      std::printf("  %-12s unsupported: %s\n", path.c_str(), result.value("unsupported", std::string("?")).c_str());
    }
  }
  std::printf("  parity of jagged's outputs vs PyTorch's: max abs %.3e, max rel %.3e\n", parity.max_abs, parity.max_rel);
  fs::remove_all(work);
  return torch;
}

}  // namespace jagged::cli
