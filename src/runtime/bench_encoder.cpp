// The BERT-family encoder as a `jagged bench` target: the compared output is the mean-pooled embedding of each
// sequence (what an embedding service returns), FLOPs come from the shapes with bidirectional attention.
#include <algorithm>
#include <filesystem>
#include <memory>

#include "jagged/bench.h"
#include "jagged/bert.h"
#include "jagged/model_files.h"
#include "jagged/model_spec.h"

namespace jagged {
namespace {

// FLOPs of the encoder's layers over `rows` positions with `pairs` attention (query, key) pairs. Per row: the fused
// QKV projection, the attention output, the MLP's two matrices; per pair and head: q.k and p.v (2 * head_dim each).
// Embeddings, norms, GELU and pooling are linear in the rows and too small to count.
double encoder_flops(const BertConfig& c, double rows, double pairs) {
  const double dim = static_cast<double>(c.model_dim), ffn = static_cast<double>(c.ffn_dim);
  const double linear = 2.0 * rows * (4.0 * dim * dim + 2.0 * dim * ffn);
  const double attention = 4.0 * dim * pairs;  // 4 * head_dim * num_heads per pair
  return c.num_layers * (linear + attention);
}

// A tokenizer is needed only for --dist corpus:FILE, so a model without one (an export, a test fixture) still
// benches on random ids; draw_workload names the missing tokenizer when a corpus needs it.
std::shared_ptr<Tokenizer> encoder_tokenizer(const std::string& spec, const std::string& tokenizer_path,
                                             int64_t vocab_size) {
  if (tokenizer_path.empty()) return find_model_tokenizer(spec, vocab_size);
  return open_model_tokenizer(spec, tokenizer_path, vocab_size);
}

}  // namespace

BenchTarget open_encoder_target(const std::string& model_spec, const std::string& tokenizer_path,
                                const std::string& dtype) {
  auto model = std::make_shared<BertModel>(open_bert_model(model_spec, dtype));
  const BertConfig config = model->config();
  BenchTarget target;
  target.family = "bert";
  target.vocab_size = config.vocab_size;
  target.context_length = config.context_length;
  target.tokenizer = encoder_tokenizer(model_spec, tokenizer_path, config.vocab_size);
  target.forward = [model](const NestedTensor& batch, BatchLayout layout, StageProfile* profile) {
    return model->embed(batch, Pooling::mean, /*normalize=*/false, {layout, false, profile});
  };
  target.flops = [config](const std::vector<int64_t>& lengths, BatchLayout layout) {
    double tokens = 0, pairs = 0, longest = 0;
    for (const int64_t length : lengths) {
      tokens += static_cast<double>(length);
      pairs += static_cast<double>(length) * static_cast<double>(length);  // every token sees its whole sequence
      longest = std::max(longest, static_cast<double>(length));
    }
    const double seqs = static_cast<double>(lengths.size());
    if (layout == BatchLayout::nested) return encoder_flops(config, tokens, pairs);
    return encoder_flops(config, seqs * longest, seqs * longest * longest);
  };
  target.export_for_torch = [model](const std::filesystem::path& directory) { export_huggingface(*model, directory); };
  target.torch_script = "bench/torch_bert.py";
  target.hidden_states = [model](const NestedTensor& batch) { return model->forward(batch); };
  return target;
}

}  // namespace jagged
