// POST /v1/embeddings for BERT-family encoders. Every input of every concurrent request joins one queue; a batcher loop
// on the server's compute thread (core/compute_thread.h) packs waiting inputs into one nested batch (no padding) of at
// most max_batch_tokens tokens and runs the encoder once for all of them. The encoder is batch invariant, so an input's
// embedding is the same bits whether it ran alone or among a hundred others.
#pragma once

#include <nlohmann/json.hpp>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <vector>

#include "core/compute_thread.h"
#include "jagged/bert.h"
#include "jagged/tokenizer.h"
#include "server/metrics.h"

namespace jagged::server {

class EmbeddingBatcher {
 public:
  // tokenizer: may be null (then inputs must be token ids). max_batch_tokens >= 1 (an input longer than it runs
  // alone).
  // The batcher runs on `compute` until destruction.
  EmbeddingBatcher(const BertModel& model, const Tokenizer* tokenizer, int64_t max_batch_tokens, Metrics& metrics,
                   core::ComputeThread& compute);
  ~EmbeddingBatcher();  // finishes queued inputs, then waits for the batcher to end
  EmbeddingBatcher(const EmbeddingBatcher&) = delete;
  EmbeddingBatcher& operator=(const EmbeddingBatcher&) = delete;

  // Validates an OpenAI embeddings request (ApiError 400), waits for its inputs' embeddings, returns the response.
  nlohmann::json handle(const nlohmann::json& body, const std::string& model_name);

 private:
  struct Job;
  std::vector<std::vector<int32_t>> inputs_of(const nlohmann::json& body) const;
  void run();

  const BertModel& model_;
  const Tokenizer* tokenizer_;
  const int64_t max_batch_tokens_;
  Metrics& metrics_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::pair<std::shared_ptr<Job>, size_t>> queue_;  // (job, input index) in arrival order
  bool stopping_ = false;
  std::future<void> batcher_;  // run() on the compute thread
};

}  // namespace jagged::server
