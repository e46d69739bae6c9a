#include "jagged/llama.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>

#include "jagged/memory.h"
#include "jagged/workload.h"
#include "models/synthetic_weights.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

// A small config with every feature on: GQA, untied head, qkv biases.
LlamaConfig small_config(int num_layers) {
  LlamaConfig config;
  config.model_dim = 48;
  config.ffn_dim = 80;
  config.num_layers = num_layers;
  config.num_heads = 6;
  config.num_kv_heads = 2;
  config.head_dim = 8;
  config.vocab_size = 97;
  config.context_length = 400;
  config.tied_output = false;
  config.qkv_bias = true;
  config.rope_pairs = ops::RopePairs::halves;
  return config;
}

LlamaModel small_model(int num_layers, uint64_t seed = 3) {
  const LlamaConfig c = small_config(num_layers);
  WeightMap weights;
  auto matrix = [&](const std::string& name, int64_t out, int64_t in) {
    weights[name] = models::synthetic_matrix(out, in, seed, name);
  };
  auto vector = [&](const std::string& name, int64_t size, float center) {
    weights[name] = models::synthetic_tensor({size}, seed, name, center, 0.2f);
  };
  weights["token_embd.weight"] = models::synthetic_tensor({c.vocab_size, c.model_dim}, seed, "embd", 0.0f, 1.0f);
  matrix("output.weight", c.vocab_size, c.model_dim);
  vector("output_norm.weight", c.model_dim, 1.0f);
  for (int i = 0; i < num_layers; ++i) {
    const std::string p = concat("blk.", i, ".");
    matrix(p + "attn_q.weight", 48, 48);
    matrix(p + "attn_k.weight", 16, 48);
    matrix(p + "attn_v.weight", 16, 48);
    vector(p + "attn_q.bias", 48, 0.0f);
    vector(p + "attn_k.bias", 16, 0.0f);
    vector(p + "attn_v.bias", 16, 0.0f);
    matrix(p + "attn_output.weight", 48, 48);
    matrix(p + "ffn_gate.weight", 80, 48);
    matrix(p + "ffn_up.weight", 80, 48);
    matrix(p + "ffn_down.weight", 48, 80);
    vector(p + "attn_norm.weight", 48, 1.0f);
    vector(p + "ffn_norm.weight", 48, 1.0f);
  }
  return LlamaModel(c, std::move(weights));
}

double max_abs(const Tensor& tensor) {
  double worst = 0.0;
  for (int64_t i = 0; i < tensor.numel(); ++i) worst = std::max(worst, std::fabs(double{tensor.data<float>()[i]}));
  return worst;
}

// fp32 error of a forward pass grows with depth and width; allow a few hundred ulps of the logits' scale.
double logits_tolerance(const Tensor& logits) { return 512.0 * FLT_EPSILON * std::max(1.0, max_abs(logits)); }

TEST(Llama, NestedEqualsPaddedEqualsAlone) {
  const LlamaModel model = small_model(2);
  for (const auto& length_case : testing::ragged_length_cases()) {
    const NestedTensor batch = random_token_batch(length_case.lengths, model.config().vocab_size, 9);
    const Tensor nested = model.forward(batch);
    const Tensor padded = model.forward(batch, {BatchLayout::padded, false, nullptr});
    ASSERT_EQ(nested.shape(), (Shape{batch.num_tokens(), model.config().vocab_size}));
    ASSERT_EQ(padded.shape(), nested.shape());
    const double tolerance = logits_tolerance(nested);
    EXPECT_LE(testing::max_abs_diff(padded.data<float>(), nested.data<float>(), nested.numel()), tolerance)
        << length_case.name;
    for (int64_t seq = 0; seq < batch.num_seqs(); ++seq) {
      const int64_t length = batch.seqlen(seq);
      if (length == 0) continue;
      const Tensor ids = Tensor::from_ints({batch.sequence(seq).as<int32_t>(), static_cast<size_t>(length)}, {length});
      const Tensor alone = model.forward(NestedTensor(ids.clone(), {0, static_cast<int32_t>(length)}));
      const float* in_batch = nested.data<float>() + batch.cu_seqlens()[seq] * model.config().vocab_size;
      EXPECT_LE(testing::max_abs_diff(alone.data<float>(), in_batch, alone.numel()), tolerance)
          << length_case.name << " sequence " << seq;
    }
  }
}

TEST(Llama, LastTokenLogitsAreTheLastRows) {
  const LlamaModel model = small_model(2);
  const NestedTensor batch = random_token_batch({5, 1, 33}, model.config().vocab_size, 4);
  const Tensor all = model.forward(batch);
  for (const BatchLayout layout : {BatchLayout::nested, BatchLayout::padded}) {
    const Tensor last = model.forward(batch, {layout, true, nullptr});
    ASSERT_EQ(last.shape(), (Shape{3, model.config().vocab_size}));
    for (int64_t seq = 0; seq < 3; ++seq) {
      const float* expected = all.data<float>() + (batch.cu_seqlens()[seq + 1] - 1) * model.config().vocab_size;
      EXPECT_LE(testing::max_abs_diff(last.data<float>() + seq * model.config().vocab_size, expected,
                                      model.config().vocab_size),
                logits_tolerance(all));
    }
  }
}

TEST(Llama, ForwardAllocatesPerBatchNotPerLayer) {
  const NestedTensor batch = random_token_batch({7, 19, 3}, 97, 2);
  auto allocations_of = [&](const LlamaModel& model) {
    const int64_t before = memory_stats().allocations;
    model.forward(batch);
    return memory_stats().allocations - before;
  };
  EXPECT_EQ(allocations_of(small_model(1)), allocations_of(small_model(4)));
}

TEST(Llama, ProfileHasEveryStage) {
  const LlamaModel model = small_model(2);
  StageProfile profile;
  model.forward(random_token_batch({4, 9}, 97, 1), {BatchLayout::nested, true, &profile});
  for (const char* stage : {"embedding", "attn_norm", "qkv_proj", "rope", "attention", "attn_output", "mlp_norm",
                            "mlp", "final_norm", "lm_head"}) {
    EXPECT_GT(profile.seconds(stage), 0.0) << stage;
  }
}

TEST(Llama, RejectsBadBatches) {
  const LlamaModel model = small_model(1);
  EXPECT_THROW(model.forward(random_token_batch({3, 401}, 97, 1)), InvalidArgument);  // past the context
  const std::vector<int32_t> out_of_range{1, 97, 2};
  EXPECT_THROW(model.forward(NestedTensor(Tensor::from_ints(out_of_range, {3}), {0, 3})), InvalidArgument);
  const std::vector<int32_t> negative{-1};
  EXPECT_THROW(model.forward(NestedTensor(Tensor::from_ints(negative, {1}), {0, 1})), InvalidArgument);
  EXPECT_THROW(model.forward(NestedTensor(Tensor({0}, DType::i32), {0})), InvalidArgument);  // no sequences
  EXPECT_THROW(model.forward(random_token_batch({3, 0}, 97, 1), {BatchLayout::nested, true, nullptr}), InvalidArgument);
  EXPECT_THROW(model.forward(NestedTensor(Tensor({2, 2}), {0, 2})), InvalidArgument);  // f32, not ids
}

TEST(Llama, RejectsMissingOrMisshapenWeights) {
  WeightMap weights = small_model(1).canonical_weights();
  weights.erase("blk.0.ffn_up.weight");
  EXPECT_THROW(LlamaModel(small_config(1), std::move(weights)), InvalidArgument);
  WeightMap reshaped = small_model(1).canonical_weights();
  reshaped["blk.0.attn_k.weight"] = Tensor::zeros({8, 48});
  EXPECT_THROW(LlamaModel(small_config(1), std::move(reshaped)), InvalidArgument);
  LlamaConfig bad_heads = small_config(1);
  bad_heads.num_kv_heads = 4;
  EXPECT_THROW(LlamaModel(bad_heads, small_model(1).canonical_weights()), InvalidArgument);
}

TEST(Llama, SyntheticModelsHaveTheirShapes) {
  const LlamaModel model = LlamaModel::synthetic("tiny");
  EXPECT_EQ(model.config().model_dim, 64);
  EXPECT_THROW(LlamaModel::synthetic("no-such-model"), InvalidArgument);
  const std::vector<std::string> names = LlamaModel::synthetic_names();
  for (const char* name : {"smollm-135m", "stories15m", "tinyllama-1.1b", "llama-3.2-1b"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
  }
}

}  // namespace
}  // namespace jagged
