#include "jagged/workload.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace jagged {
namespace {

std::vector<int64_t> lognormal_lengths(const WorkloadSpec& spec) {
  std::mt19937_64 rng(spec.seed);
  std::normal_distribution<double> normal(0.0, 0.75);
  const double median = std::sqrt(static_cast<double>(std::max<int64_t>(spec.min_len, 1)) * spec.max_len);
  std::vector<int64_t> lengths(static_cast<size_t>(spec.batch));
  for (auto& length : lengths) {
    const auto drawn = static_cast<int64_t>(std::llround(median * std::exp(normal(rng))));
    length = std::clamp(drawn, spec.min_len, spec.max_len);
  }
  return lengths;
}

// FileError unless `path` is a regular file: a FIFO or device (/dev/zero) would block or be read forever.
void require_regular_file(const std::string& path, const char* what) {
  std::error_code error;
  if (!std::filesystem::exists(path, error)) throw FileError(concat(path, ": cannot open the ", what, ": no such file"));
  if (!std::filesystem::is_regular_file(path, error)) throw FileError(concat(path, ": the ", what, " is not a regular file"));
}

std::vector<int64_t> lengths_from_file(const std::string& path) {
  require_regular_file(path, "lengths file");
  std::ifstream in(path);
  if (!in) throw FileError(concat(path, ": cannot open lengths file"));
  std::vector<int64_t> lengths;
  std::string word;
  while (in >> word) {
    size_t used = 0;
    int64_t length = -1;
    try {
      length = std::stoll(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != word.size() || length < 0) throw FileError(concat(path, ": '", word, "' is not a sequence length"));
    lengths.push_back(length);
  }
  if (lengths.empty()) throw FileError(concat(path, ": no lengths in the file"));
  return lengths;
}

std::vector<std::string> read_documents(const std::string& path) {
  require_regular_file(path, "corpus file");
  std::ifstream in(path);
  if (!in) throw FileError(concat(path, ": cannot open corpus file"));
  std::vector<std::string> documents;
  std::string current;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line == "%") {
      if (!current.empty()) documents.push_back(std::move(current));
      current.clear();
      continue;
    }
    current += current.empty() ? line : "\n" + line;
  }
  if (!current.empty()) documents.push_back(std::move(current));
  return documents;
}

NestedTensor corpus_batch(const WorkloadSpec& spec, const std::string& path, int64_t vocab_size,
                          const Tokenizer* tokenizer) {
  if (tokenizer == nullptr) {
    throw InvalidArgument("--dist corpus: needs a tokenizer (a model with one, or --tokenizer)");
  }
  const std::vector<std::string> documents = read_documents(path);
  std::vector<std::vector<int32_t>> tokenised;
  for (const auto& document : documents) {
    std::vector<int32_t> ids = tokenizer->encode(document, /*add_special=*/true);
    if (static_cast<int64_t>(ids.size()) < spec.min_len) continue;
    if (static_cast<int64_t>(ids.size()) > spec.max_len) ids.resize(static_cast<size_t>(spec.max_len));
    tokenised.push_back(std::move(ids));
  }
  if (static_cast<int64_t>(tokenised.size()) < spec.batch) {
    throw InvalidArgument(concat("--dist corpus: ", path, " has only ", tokenised.size(), " documents of at least ",
                                 spec.min_len, " tokens; the batch needs ", spec.batch));
  }
  std::mt19937_64 rng(spec.seed);
  const size_t start = static_cast<size_t>(rng() % (tokenised.size() - static_cast<size_t>(spec.batch) + 1));
  std::vector<int64_t> lengths;
  for (int64_t i = 0; i < spec.batch; ++i) lengths.push_back(static_cast<int64_t>(tokenised[start + i].size()));
  NestedTensor batch = NestedTensor::from_lengths(lengths, {}, DType::i32);
  int32_t* ids = batch.values().data<int32_t>();
  for (int64_t i = 0; i < spec.batch; ++i) ids = std::copy(tokenised[start + i].begin(), tokenised[start + i].end(), ids);
  // A tokenizer larger than the model's vocabulary (measuring a synthetic model on real lengths) folds its ids
  // into range: the lengths stay real, the ids stay valid.
  int32_t* all_ids = batch.values().data<int32_t>();
  for (int64_t t = 0; t < batch.num_tokens(); ++t) all_ids[t] = static_cast<int32_t>(all_ids[t] % vocab_size);
  return batch;
}

}  // namespace

const std::vector<int64_t>& study_lengths() {
  static const std::vector<int64_t> lengths{109, 63,  243, 13,  217, 16,  31,  187, 20,  28,  214,
                                            230, 113, 58,  173, 174, 198, 229, 48,  153, 189, 11,
                                            185, 44,  79,  32,  127, 244, 250, 50,  71,  161};
  return lengths;
}

std::vector<int64_t> uniform_lengths(int64_t batch, int64_t min_len, int64_t max_len, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const uint64_t span = static_cast<uint64_t>(max_len - min_len + 1);
  std::vector<int64_t> lengths(static_cast<size_t>(batch));
  for (auto& length : lengths) length = min_len + static_cast<int64_t>(rng() % span);
  return lengths;
}

NestedTensor random_token_batch(const std::vector<int64_t>& lengths, int64_t vocab_size, uint64_t seed) {
  if (vocab_size <= 0) throw InvalidArgument(concat("vocab_size must be positive, got ", vocab_size));
  NestedTensor batch = NestedTensor::from_lengths(lengths, {}, DType::i32);
  std::mt19937_64 rng(seed ^ 0x5eed);
  int32_t* ids = batch.values().data<int32_t>();
  for (int64_t t = 0; t < batch.num_tokens(); ++t) ids[t] = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab_size));
  return batch;
}

void validate_distribution_name(const std::string& distribution) {
  for (const char* name : {"study", "uniform", "lognormal", "equal", "one-long"}) {
    if (distribution == name) return;
  }
  if (distribution.rfind("lengths:", 0) == 0 || distribution.rfind("corpus:", 0) == 0) return;
  throw InvalidArgument(concat("unknown length distribution '", distribution,
                               "'; use study, uniform, lognormal, equal, one-long, lengths:FILE or corpus:FILE"));
}

NestedTensor draw_workload(const WorkloadSpec& spec, int64_t vocab_size, const Tokenizer* tokenizer) {
  validate_distribution_name(spec.distribution);
  if (spec.distribution != "study" && spec.distribution.rfind("lengths:", 0) != 0) {
    if (spec.batch <= 0) throw InvalidArgument(concat("batch must be positive, got ", spec.batch));
    if (spec.min_len < 1 || spec.min_len > spec.max_len) {
      throw InvalidArgument(concat("lengths need 1 <= min-len <= max-len, got min-len ", spec.min_len,
                                   ", max-len ", spec.max_len));
    }
  }
  std::vector<int64_t> lengths;
  const std::string& dist = spec.distribution;
  if (dist == "study") {
    lengths = study_lengths();
  } else if (dist == "uniform") {
    lengths = uniform_lengths(spec.batch, spec.min_len, spec.max_len, spec.seed);
  } else if (dist == "lognormal") {
    lengths = lognormal_lengths(spec);
  } else if (dist == "equal") {
    lengths.assign(static_cast<size_t>(spec.batch), (spec.min_len + spec.max_len) / 2);
  } else if (dist == "one-long") {
    lengths.assign(static_cast<size_t>(spec.batch), spec.min_len);
    lengths[0] = spec.max_len;
  } else if (dist.rfind("lengths:", 0) == 0) {
    lengths = lengths_from_file(dist.substr(8));
  } else {
    return corpus_batch(spec, dist.substr(7), vocab_size, tokenizer);  // every length <= max_len
  }
  if (spec.context_length > 0) {
    const int64_t longest = *std::max_element(lengths.begin(), lengths.end());
    if (longest > spec.context_length) {
      throw InvalidArgument(concat("--dist ", dist, ": a sequence of ", longest,
                                   " tokens exceeds the model's context length ", spec.context_length));
    }
  }
  return random_token_batch(lengths, vocab_size, spec.seed);
}

}  // namespace jagged
