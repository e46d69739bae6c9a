#include "server/embeddings.h"

#include "jagged/nested_tensor.h"
#include "server/api_error.h"

namespace jagged::server {

using nlohmann::json;

// One request's inputs and their embeddings; the handler thread waits until every one is filled.
struct EmbeddingBatcher::Job {
  std::vector<std::vector<int32_t>> inputs;
  std::vector<std::vector<float>> embeddings;  // [inputs][model_dim]
  size_t remaining = 0;
  std::string error;
  std::condition_variable done;
};

EmbeddingBatcher::EmbeddingBatcher(const BertModel& model, const Tokenizer* tokenizer, int64_t max_batch_tokens,
                                   Metrics& metrics, core::ComputeThread& compute)
    : model_(model), tokenizer_(tokenizer), max_batch_tokens_(std::max<int64_t>(1, max_batch_tokens)),
      metrics_(metrics), batcher_(compute.post([this] { run(); })) {}

EmbeddingBatcher::~EmbeddingBatcher() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  batcher_.wait();
}

std::vector<std::vector<int32_t>> EmbeddingBatcher::inputs_of(const json& body) const {
  if (!body.contains("input")) throw ApiError(400, "'input' is required", "input");
  if (body.contains("encoding_format") && body["encoding_format"] != "float") {
    throw ApiError(400, "only encoding_format 'float' is supported", "encoding_format");
  }
  if (body.contains("dimensions") && !body["dimensions"].is_null() &&
      body["dimensions"] != model_.config().model_dim) {
    throw ApiError(400, concat("this model's embeddings have ", model_.config().model_dim, " dimensions"), "dimensions");
  }
  const json& input = body["input"];
  std::vector<json> items;
  if (input.is_string() || (input.is_array() && !input.empty() && input[0].is_number())) {
    items.push_back(input);  // one text, or one list of token ids
  } else if (input.is_array() && !input.empty()) {
    items.assign(input.begin(), input.end());
  } else {
    throw ApiError(400, "'input' must be a string, a list of strings, or token ids", "input");
  }
  if (items.size() > 2048) throw ApiError(400, "at most 2048 inputs per request", "input");
  const BertConfig& config = model_.config();
  std::vector<std::vector<int32_t>> inputs;
  for (const json& item : items) {
    std::vector<int32_t> ids;
    if (item.is_string()) {
      if (tokenizer_ == nullptr) throw ApiError(400, "the model has no tokenizer: send token ids", "input");
      ids = tokenizer_->encode(item.get<std::string>(), /*add_special=*/true);
    } else if (item.is_array() && !item.empty()) {
      for (const json& id : item) {
        if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= config.vocab_size) {
          throw ApiError(400, concat("token id ", id.dump(), " is not in [0, ", config.vocab_size, ")"), "input");
        }
        ids.push_back(id.get<int32_t>());
      }
    } else {
      throw ApiError(400, "each input must be a string or a non-empty list of token ids", "input");
    }
    if (static_cast<int64_t>(ids.size()) > config.context_length) {
      throw ApiError(400, concat("an input has ", ids.size(), " tokens; this model's context is ",
                                 config.context_length, " tokens"), "input", "context_length_exceeded");
    }
    inputs.push_back(std::move(ids));
  }
  return inputs;
}

json EmbeddingBatcher::handle(const json& body, const std::string& model_name) {
  auto job = std::make_shared<Job>();
  job->inputs = inputs_of(body);
  job->embeddings.resize(job->inputs.size());
  job->remaining = job->inputs.size();
  int64_t prompt_tokens = 0;
  for (const auto& ids : job->inputs) prompt_tokens += static_cast<int64_t>(ids.size());
  {
    std::unique_lock lock(mutex_);
    if (stopping_) throw ApiError(503, "the server is shutting down");
    for (size_t i = 0; i < job->inputs.size(); ++i) queue_.emplace_back(job, i);
    wake_.notify_all();
    job->done.wait(lock, [&] { return job->remaining == 0; });
  }
  if (!job->error.empty()) throw ApiError(500, job->error);
  json data = json::array();
  for (size_t i = 0; i < job->embeddings.size(); ++i) {
    data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", job->embeddings[i]}});
  }
  return {{"object", "list"},
          {"data", data},
          {"model", model_name},
          {"usage", {{"prompt_tokens", prompt_tokens}, {"total_tokens", prompt_tokens}}}};
}

void EmbeddingBatcher::run() {
  for (;;) {
    std::vector<std::pair<std::shared_ptr<Job>, size_t>> batch;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      int64_t tokens = 0;
      while (!queue_.empty()) {
        const auto& [job, index] = queue_.front();
        const auto length = static_cast<int64_t>(job->inputs[index].size());
        if (!batch.empty() && tokens + length > max_batch_tokens_) break;
        tokens += length;
        batch.push_back(queue_.front());
        queue_.pop_front();
      }
    }
    // [num_tokens] i32 packed, one sequence per input (no padding).
    std::vector<int32_t> ids;
    std::vector<int64_t> lengths;
    for (const auto& [job, index] : batch) {
      ids.insert(ids.end(), job->inputs[index].begin(), job->inputs[index].end());
      lengths.push_back(static_cast<int64_t>(job->inputs[index].size()));
    }
    metrics_.observe_embedding_batch(static_cast<int64_t>(batch.size()), static_cast<int64_t>(ids.size()));
    std::string error;
    Tensor embeddings;
    try {
      const NestedTensor tokens(Tensor::from_ints(ids, {static_cast<int64_t>(ids.size())}),
                                cu_seqlens_from_lengths(lengths));
      embeddings = model_.embed(tokens, Pooling::mean, /*normalize=*/true);  // [num_seqs, model_dim] f32
    } catch (const std::exception& caught) {
      error = concat("the encoder failed: ", caught.what());
    }
    std::lock_guard lock(mutex_);
    const int64_t dim = model_.config().model_dim;
    for (size_t seq = 0; seq < batch.size(); ++seq) {
      auto& [job, index] = batch[seq];
      if (error.empty()) {
        const float* row = embeddings.data<float>() + static_cast<int64_t>(seq) * dim;
        job->embeddings[index].assign(row, row + dim);
      } else {
        job->error = error;
      }
      if (--job->remaining == 0) job->done.notify_all();
    }
  }
}

}  // namespace jagged::server
