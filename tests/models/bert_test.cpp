#include "jagged/bert.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <fstream>

#include "jagged/memory.h"
#include "jagged/workload.h"
#include "models/synthetic_weights.h"
#include "testing/ragged.h"

namespace jagged {
namespace {

constexpr int64_t kDim = 48;
constexpr int64_t kFfn = 80;
constexpr int64_t kVocab = 97;
constexpr int64_t kLabels = 3;
constexpr Pooling kAllPoolings[] = {Pooling::cls, Pooling::mean, Pooling::max};

BertConfig small_config(int num_layers, bool pre_norm = false) {
  BertConfig config;
  config.model_dim = kDim;
  config.ffn_dim = kFfn;
  config.num_layers = num_layers;
  config.num_heads = 6;  // head_dim 8
  config.vocab_size = kVocab;
  config.context_length = 400;
  config.type_vocab_size = 2;
  config.norm_eps = 1e-12f;
  config.pre_norm = pre_norm;
  config.num_labels = kLabels;
  config.labels = {"a", "b", "c"};
  return config;
}

WeightMap small_weights(int num_layers, bool pre_norm, uint64_t seed) {
  WeightMap weights;
  auto linear = [&](const std::string& stem, int64_t out, int64_t in) {
    weights[stem + ".weight"] = models::synthetic_matrix(out, in, seed, stem + ".weight");
    weights[stem + ".bias"] = models::synthetic_tensor({out}, seed, stem + ".bias", 0.0f, 0.2f);
  };
  auto norm = [&](const std::string& stem) {
    weights[stem + ".weight"] = models::synthetic_tensor({kDim}, seed, stem + ".weight", 1.0f, 0.2f);
    weights[stem + ".bias"] = models::synthetic_tensor({kDim}, seed, stem + ".bias", 0.0f, 0.2f);
  };
  weights["token_embd.weight"] = models::synthetic_tensor({kVocab, kDim}, seed, "token_embd", 0.0f, 1.0f);
  weights["position_embd.weight"] = models::synthetic_tensor({400, kDim}, seed, "position_embd", 0.0f, 1.0f);
  weights["token_types.weight"] = models::synthetic_tensor({2, kDim}, seed, "token_types", 0.0f, 1.0f);
  norm("token_embd_norm");
  for (int i = 0; i < num_layers; ++i) {
    const std::string p = concat("blk.", i, ".");
    for (const char* projection : {"attn_q", "attn_k", "attn_v", "attn_output"}) linear(p + projection, kDim, kDim);
    norm(p + "attn_output_norm");
    linear(p + "ffn_up", kFfn, kDim);
    linear(p + "ffn_down", kDim, kFfn);
    norm(p + "layer_output_norm");
  }
  if (pre_norm) norm("output_norm");
  linear("cls.pooler", kDim, kDim);
  linear("cls", kLabels, kDim);
  return weights;
}

BertModel small_model(int num_layers, bool pre_norm = false, uint64_t seed = 3) {
  return BertModel(small_config(num_layers, pre_norm), small_weights(num_layers, pre_norm, seed));
}

NestedTensor batch_of(const std::vector<std::vector<int32_t>>& sequences) {
  std::vector<int32_t> ids;
  std::vector<int64_t> lengths;
  for (const auto& sequence : sequences) {
    ids.insert(ids.end(), sequence.begin(), sequence.end());
    lengths.push_back(static_cast<int64_t>(sequence.size()));
  }
  return NestedTensor(Tensor::from_ints(ids, {static_cast<int64_t>(ids.size())}), cu_seqlens_from_lengths(lengths));
}

// Sequence `seq` of a batch as a batch of its own.
NestedTensor alone(const NestedTensor& batch, int64_t seq) {
  const int64_t length = batch.seqlen(seq);
  const Tensor ids = Tensor::from_ints({batch.sequence(seq).as<int32_t>(), static_cast<size_t>(length)}, {length});
  return NestedTensor(ids.clone(), {0, static_cast<int32_t>(length)});
}

double max_abs(const Tensor& tensor) {
  double worst = 0.0;
  for (int64_t i = 0; i < tensor.numel(); ++i) worst = std::max(worst, std::fabs(double{tensor.data<float>()[i]}));
  return worst;
}

// fp32 error of a forward pass grows with depth and width; allow a few hundred ulps of the outputs' scale.
double fp32_tolerance(const Tensor& reference) { return 512.0 * FLT_EPSILON * std::max(1.0, max_abs(reference)); }

double diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  if (a.shape() != b.shape()) return INFINITY;
  return testing::max_abs_diff(a.data<float>(), b.data<float>(), a.numel());
}

constexpr ForwardOptions kPadded{BatchLayout::padded, false, nullptr};

TEST(Bert, NestedEqualsPaddedEqualsAlone) {
  for (const bool pre_norm : {false, true}) {
    const BertModel model = small_model(2, pre_norm);
    for (const auto& length_case : testing::ragged_length_cases()) {
      const std::string where = concat(length_case.name, pre_norm ? " pre-norm" : " post-norm");
      const NestedTensor batch = random_token_batch(length_case.lengths, kVocab, 9);
      const Tensor nested = model.forward(batch);
      ASSERT_EQ(nested.shape(), (Shape{batch.num_tokens(), kDim})) << where;
      const double tolerance = fp32_tolerance(nested);
      EXPECT_LE(diff(model.forward(batch, kPadded), nested), tolerance) << where;
      for (const Pooling pooling : kAllPoolings) {
        const Tensor embedded = model.embed(batch, pooling, true);
        ASSERT_EQ(embedded.shape(), (Shape{batch.num_seqs(), kDim}));
        EXPECT_LE(diff(model.embed(batch, pooling, true, kPadded), embedded), tolerance) << where;
      }
      const Tensor embedded = model.embed(batch, Pooling::mean, false);
      bool any_empty = false;
      for (int64_t seq = 0; seq < batch.num_seqs(); ++seq) {
        const int64_t length = batch.seqlen(seq);
        if (length == 0) {
          any_empty = true;
          for (int64_t i = 0; i < kDim; ++i) EXPECT_EQ(embedded.data<float>()[seq * kDim + i], 0.0f) << where;
          continue;
        }
        const Tensor hidden = model.forward(alone(batch, seq));
        const float* in_batch = nested.data<float>() + batch.cu_seqlens()[seq] * kDim;
        EXPECT_LE(testing::max_abs_diff(hidden.data<float>(), in_batch, hidden.numel()), tolerance)
            << where << " sequence " << seq;
        const Tensor mean_alone = model.embed(alone(batch, seq), Pooling::mean, false);
        EXPECT_LE(testing::max_abs_diff(mean_alone.data<float>(), embedded.data<float>() + seq * kDim, kDim), tolerance)
            << where << " sequence " << seq;
      }
      if (!any_empty) {
        const Tensor logits = model.classify(batch);
        ASSERT_EQ(logits.shape(), (Shape{batch.num_seqs(), kLabels}));
        EXPECT_LE(diff(model.classify(batch, kPadded), logits), fp32_tolerance(logits)) << where;
        const Tensor first_alone = model.classify(alone(batch, 0));
        EXPECT_LE(testing::max_abs_diff(first_alone.data<float>(), logits.data<float>(), kLabels), fp32_tolerance(logits))
            << where;
      }
    }
  }
}

TEST(Bert, PoolingMatchesHandComputation) {
  const BertModel model = small_model(2);
  const NestedTensor batch = random_token_batch({7, 1, 0, 40}, kVocab, 5);
  const Tensor hidden = model.forward(batch);
  const Tensor cls = model.embed(batch, Pooling::cls, false);
  const Tensor mean = model.embed(batch, Pooling::mean, false);
  const Tensor max = model.embed(batch, Pooling::max, false);
  const Tensor normalized = model.embed(batch, Pooling::mean, true);
  for (int64_t seq = 0; seq < batch.num_seqs(); ++seq) {
    const int64_t begin = batch.cu_seqlens()[seq];
    const int64_t length = batch.seqlen(seq);
    // A mean of n f32 values summed in order errs by (n - 1) eps / 2 of the largest; normalising adds ~dim eps.
    const double mean_tolerance = (length + 1) * FLT_EPSILON * std::max(1.0, max_abs(hidden));
    std::vector<double> expected_mean(kDim, 0.0);
    double norm = 0.0;
    for (int64_t i = 0; i < kDim; ++i) {
      double sum = 0.0;
      float largest = length > 0 ? -INFINITY : 0.0f;
      for (int64_t t = begin; t < begin + length; ++t) {
        sum += hidden.data<float>()[t * kDim + i];
        largest = std::max(largest, hidden.data<float>()[t * kDim + i]);
      }
      expected_mean[i] = length > 0 ? sum / length : 0.0;
      norm += expected_mean[i] * expected_mean[i];
      const float first = length > 0 ? hidden.data<float>()[begin * kDim + i] : 0.0f;
      EXPECT_EQ(cls.data<float>()[seq * kDim + i], first) << "cls, sequence " << seq;
      EXPECT_EQ(max.data<float>()[seq * kDim + i], largest) << "max, sequence " << seq;
      EXPECT_NEAR(mean.data<float>()[seq * kDim + i], expected_mean[i], mean_tolerance) << "mean, sequence " << seq;
    }
    norm = std::sqrt(norm);
    for (int64_t i = 0; i < kDim; ++i) {
      const double expected = length > 0 ? expected_mean[i] / norm : 0.0;
      EXPECT_NEAR(normalized.data<float>()[seq * kDim + i], expected, (kDim + length + 4) * FLT_EPSILON)
          << "normalized, sequence " << seq;
    }
  }
}

TEST(Bert, ClassifierIsPoolerThenLinearOnTheFirstToken) {
  const BertModel model = small_model(1);
  const WeightMap weights = model.canonical_weights();
  const NestedTensor batch = random_token_batch({4, 1, 23}, kVocab, 6);
  const Tensor hidden = model.forward(batch);
  const Tensor logits = model.classify(batch);
  const float* pooler_w = weights.at("cls.pooler.weight").data<float>();
  const float* pooler_b = weights.at("cls.pooler.bias").data<float>();
  const float* cls_w = weights.at("cls.weight").data<float>();
  const float* cls_b = weights.at("cls.bias").data<float>();
  for (int64_t seq = 0; seq < 3; ++seq) {
    const float* first = hidden.data<float>() + batch.cu_seqlens()[seq] * kDim;
    std::vector<double> pooled(kDim);
    for (int64_t o = 0; o < kDim; ++o) {
      double sum = pooler_b[o];
      for (int64_t i = 0; i < kDim; ++i) sum += double{pooler_w[o * kDim + i]} * first[i];
      pooled[o] = std::tanh(sum);
    }
    for (int64_t label = 0; label < kLabels; ++label) {
      double expected = cls_b[label];
      for (int64_t i = 0; i < kDim; ++i) expected += double{cls_w[label * kDim + i]} * pooled[i];
      // Two dot products of length dim over O(1) values: a few dim * eps.
      EXPECT_NEAR(logits.data<float>()[seq * kLabels + label], expected, 4.0 * kDim * FLT_EPSILON * max_abs(hidden))
          << "sequence " << seq << " label " << label;
    }
  }
}

TEST(Bert, TokenTypesAreAddedPerToken) {
  const BertModel model = small_model(2);
  const NestedTensor batch = random_token_batch({5, 12, 1}, kVocab, 8);
  const Tensor implicit = model.forward(batch);
  const Tensor zeros = Tensor::zeros({batch.num_tokens()}, DType::i32);
  const Tensor explicit_zeros = model.forward(batch, zeros);
  EXPECT_EQ(std::memcmp(implicit.raw_data(), explicit_zeros.raw_data(), implicit.nbytes()), 0);
  std::vector<int32_t> types(static_cast<size_t>(batch.num_tokens()), 0);
  for (int64_t t = 7; t < 12; ++t) types[static_cast<size_t>(t)] = 1;  // second half of sequence 1
  const Tensor type_ids = Tensor::from_ints(types, {batch.num_tokens()});
  const Tensor mixed = model.forward(batch, type_ids);
  EXPECT_GT(diff(mixed, implicit), 1e-3);
  EXPECT_LE(diff(model.forward(batch, type_ids, kPadded), mixed), fp32_tolerance(mixed));
  // Sequence 0 has no type-1 token and attends only to itself: unchanged.
  EXPECT_EQ(std::memcmp(mixed.raw_data(), implicit.raw_data(), 5 * kDim * sizeof(float)), 0);
  const Tensor embedded = model.embed(batch, type_ids, Pooling::mean, true);
  EXPECT_LE(diff(model.embed(batch, type_ids, Pooling::mean, true, kPadded), embedded), fp32_tolerance(embedded));
  const Tensor logits = model.classify(batch, type_ids);
  EXPECT_LE(diff(model.classify(batch, type_ids, kPadded), logits), fp32_tolerance(logits));
}

TEST(Bert, PreNormVariantDiffersAndNeedsItsFinalNorm) {
  const NestedTensor batch = random_token_batch({9, 30}, kVocab, 2);
  const Tensor post = small_model(2, false).forward(batch);
  const Tensor pre = small_model(2, true).forward(batch);
  ASSERT_EQ(pre.shape(), post.shape());
  EXPECT_GT(diff(pre, post), 1e-2);
  for (int64_t i = 0; i < pre.numel(); ++i) ASSERT_TRUE(std::isfinite(pre.data<float>()[i])) << i;
  WeightMap weights = small_weights(2, true, 3);
  weights.erase("output_norm.bias");
  try {
    BertModel model(small_config(2, true), std::move(weights));
    FAIL() << "a pre-norm model without output_norm.bias was accepted";
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("output_norm.bias"), std::string::npos) << error.what();
  }
}

// Nested only: the padded baseline materialises each layer's score matrix, as frameworks do.
TEST(Bert, ForwardAllocatesPerBatchNotPerLayer) {
  const NestedTensor batch = random_token_batch({7, 19, 3}, kVocab, 2);
  auto allocations_of = [&](const BertModel& model) {
    const int64_t before = memory_stats().allocations;
    model.embed(batch, Pooling::mean, true);
    return memory_stats().allocations - before;
  };
  EXPECT_EQ(allocations_of(small_model(1)), allocations_of(small_model(4)));
}

TEST(Bert, ProfileHasEveryStage) {
  const BertModel model = small_model(2);
  const NestedTensor batch = random_token_batch({4, 9}, kVocab, 1);
  for (const ForwardOptions layout : {ForwardOptions{}, kPadded}) {
    StageProfile profile;
    ForwardOptions options = layout;
    options.profile = &profile;
    model.embed(batch, Pooling::mean, true, options);
    std::vector<const char*> stages{"embedding", "qkv_proj", "attention", "attn_output", "attn_norm", "mlp",
                                    "mlp_norm", "pooling"};
    if (layout.layout == BatchLayout::padded) stages.push_back("pad");
    for (const char* stage : stages) EXPECT_GT(profile.seconds(stage), 0.0) << stage;
    profile.clear();
    model.classify(batch, options);
    EXPECT_GT(profile.seconds("classifier"), 0.0);
  }
}

TEST(Bert, RejectsBadBatches) {
  const BertModel model = small_model(1);
  EXPECT_THROW(model.forward(random_token_batch({3, 401}, kVocab, 1)), InvalidArgument);  // past the context
  EXPECT_THROW(model.embed(random_token_batch({401}, kVocab, 1), Pooling::mean, true, kPadded), InvalidArgument);
  EXPECT_THROW(model.forward(batch_of({{1, 97, 2}})), InvalidArgument);
  EXPECT_THROW(model.forward(batch_of({{-1}})), InvalidArgument);
  EXPECT_THROW(model.forward(NestedTensor(Tensor({0}, DType::i32), {0})), InvalidArgument);  // no sequences
  EXPECT_THROW(model.forward(NestedTensor(Tensor({2, 2}), {0, 2})), InvalidArgument);        // f32, not ids
  const NestedTensor batch = batch_of({{1, 2}, {3}});
  EXPECT_THROW(model.forward(batch, Tensor::zeros({2}, DType::i32)), InvalidArgument);  // 2 types, 3 tokens
  EXPECT_THROW(model.forward(batch, Tensor::zeros({3})), InvalidArgument);              // f32 types
  const std::vector<int32_t> bad_types{0, 2, 0};
  EXPECT_THROW(model.forward(batch, Tensor::from_ints(bad_types, {3})), InvalidArgument);
  EXPECT_THROW(model.classify(batch_of({{1, 2}, {}})), InvalidArgument);  // no first token to classify
  EXPECT_NO_THROW(model.embed(batch_of({{1, 2}, {}}), Pooling::cls, true));
  try {
    model.forward(batch_of({{5, 3, 200}}));
    FAIL() << "id 200 accepted";
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("200"), std::string::npos) << error.what();
  }
}

TEST(Bert, EmptySequencesOnlyGiveEmptyStatesAndZeroEmbeddings) {
  const BertModel model = small_model(1);
  const NestedTensor batch = batch_of({{}, {}});
  for (const ForwardOptions& options : {ForwardOptions{}, kPadded}) {
    EXPECT_EQ(model.forward(batch, options).shape(), (Shape{0, kDim}));
    const Tensor embedded = model.embed(batch, Pooling::max, true, options);
    ASSERT_EQ(embedded.shape(), (Shape{2, kDim}));
    EXPECT_EQ(max_abs(embedded), 0.0);
  }
}

void expect_rejected(BertConfig config, WeightMap weights, const std::string& named) {
  try {
    BertModel model(std::move(config), std::move(weights));
    ADD_FAILURE() << "accepted; expected an error naming " << named;
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find(named), std::string::npos) << error.what();
  }
}

TEST(Bert, RejectsMissingOrMisshapenWeightsNamingThem) {
  WeightMap missing = small_model(1).canonical_weights();
  missing.erase("blk.0.ffn_up.bias");
  expect_rejected(small_config(1), std::move(missing), "blk.0.ffn_up.bias");
  WeightMap reshaped = small_model(1).canonical_weights();
  reshaped["blk.0.attn_k.weight"] = Tensor::zeros({8, kDim});
  expect_rejected(small_config(1), std::move(reshaped), "blk.0.attn_k.weight");
  WeightMap short_positions = small_model(1).canonical_weights();
  short_positions["position_embd.weight"] = Tensor::zeros({100, kDim});
  expect_rejected(small_config(1), std::move(short_positions), "position_embd.weight");
  WeightMap no_pooler = small_model(1).canonical_weights();
  no_pooler.erase("cls.pooler.weight");
  expect_rejected(small_config(1), std::move(no_pooler), "cls.pooler.weight");

  BertConfig bad_heads = small_config(1);
  bad_heads.num_heads = 5;
  expect_rejected(bad_heads, small_model(1).canonical_weights(), "num_heads");
  BertConfig bad_labels = small_config(1);
  bad_labels.labels = {"only one"};
  expect_rejected(bad_labels, small_model(1).canonical_weights(), "label");

  // No head: embeddings work, classification says why it cannot.
  BertConfig encoder_only = small_config(1);
  encoder_only.num_labels = 0;
  encoder_only.labels.clear();
  WeightMap encoder_weights = small_model(1).canonical_weights();
  for (const char* name : {"cls.weight", "cls.bias", "cls.pooler.weight", "cls.pooler.bias"}) encoder_weights.erase(name);
  const BertModel encoder(encoder_only, std::move(encoder_weights));
  EXPECT_FALSE(encoder.has_classifier());
  EXPECT_NO_THROW(encoder.embed(batch_of({{1, 2, 3}}), Pooling::mean, true));
  EXPECT_THROW(encoder.classify(batch_of({{1, 2, 3}})), InvalidArgument);
}

TEST(Bert, CanonicalWeightsRoundTrip) {
  const BertModel model = small_model(2, true);
  const BertModel copy(small_config(2, true), model.canonical_weights());
  EXPECT_EQ(copy.parameter_count(), model.parameter_count());
  const NestedTensor batch = random_token_batch({6, 2}, kVocab, 4);
  const Tensor a = model.forward(batch);
  const Tensor b = copy.forward(batch);
  EXPECT_EQ(std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()), 0);
}

TEST(Bert, SyntheticModelsHaveTheirShapes) {
  const BertModel tiny = BertModel::synthetic("bert-tiny");
  EXPECT_EQ(tiny.config().model_dim, 64);
  EXPECT_TRUE(tiny.has_classifier());
  const NestedTensor batch = random_token_batch({3, 0, 17}, tiny.config().vocab_size, 1);
  const Tensor embedded = tiny.embed(batch, Pooling::mean, true);
  EXPECT_LE(diff(tiny.embed(batch, Pooling::mean, true, kPadded), embedded), fp32_tolerance(embedded));
  EXPECT_THROW(BertModel::synthetic("no-such-model"), InvalidArgument);
  const std::vector<std::string> names = BertModel::synthetic_names();
  for (const char* name : {"bert-base", "minilm-l6", "bert-tiny"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
  }
}

// The PyTorch reference (scripts/fixtures/make_bert_fixtures.py): a Hugging Face BertForSequenceClassification
// directory, with float64 outputs of each sequence run alone.
class BertFixture : public ::testing::Test {
 protected:
  static std::filesystem::path directory() { return std::filesystem::path(JAGGED_SOURCE_DIR) / "tests/fixtures/bert-tiny"; }

  static Tensor rows(const nlohmann::json& values) {  // [n][dim] -> [n, dim]
    std::vector<float> flat;
    for (const auto& row : values) {
      for (const auto& value : row) flat.push_back(value.get<float>());
    }
    return Tensor::from_floats(flat, {static_cast<int64_t>(values.size()), static_cast<int64_t>(values[0].size())});
  }
};

TEST_F(BertFixture, MatchesPyTorchReference) {
  JAGGED_REQUIRE_PATH(directory() / "reference.json");
  std::ifstream file(directory() / "reference.json");
  const nlohmann::json reference = nlohmann::json::parse(file);
  const BertModel model = load_bert_model(directory());
  EXPECT_EQ(model.config().model_dim, reference["config"]["model_dim"].get<int64_t>());
  EXPECT_EQ(model.config().num_labels, reference["config"]["num_labels"].get<int64_t>());

  std::vector<std::vector<int32_t>> sequences;
  std::vector<int32_t> types;
  nlohmann::json hidden_rows = nlohmann::json::array();
  for (size_t seq = 0; seq < reference["sequences"].size(); ++seq) {
    sequences.push_back(reference["sequences"][seq].get<std::vector<int32_t>>());
    for (const auto& type : reference["token_type_ids"][seq]) types.push_back(type.get<int32_t>());
    for (const auto& row : reference["last_hidden_state"][seq]) hidden_rows.push_back(row);
  }
  const NestedTensor batch = batch_of(sequences);
  const Tensor type_ids = Tensor::from_ints(types, {batch.num_tokens()});

  const Tensor expected_hidden = rows(hidden_rows);
  const Tensor expected_logits = rows(reference["logits"]);
  // The reference is float64 printed to 7 significant digits; an fp32 forward of this depth stays within
  // ~100 ulps of the outputs' scale (PyTorch's own fp32 run differs by ~6 ulps).
  auto tolerance = [](const Tensor& expected) { return 128.0 * FLT_EPSILON * std::max(1.0, max_abs(expected)); };
  for (const ForwardOptions& options : {ForwardOptions{}, kPadded}) {
    const char* layout = options.layout == BatchLayout::nested ? "nested" : "padded";
    EXPECT_LE(diff(model.forward(batch, type_ids, options), expected_hidden), tolerance(expected_hidden)) << layout;
    const std::pair<const char*, Pooling> poolings[] = {{"cls", Pooling::cls}, {"mean", Pooling::mean}, {"max", Pooling::max}};
    for (const auto& [key, pooling] : poolings) {
      const Tensor expected = rows(reference[key]);
      EXPECT_LE(diff(model.embed(batch, type_ids, pooling, false, options), expected), tolerance(expected))
          << layout << " " << key;
    }
    const Tensor expected_normalized = rows(reference["mean_normalized"]);
    EXPECT_LE(diff(model.embed(batch, type_ids, Pooling::mean, true, options), expected_normalized),
              tolerance(expected_normalized))
        << layout;
    EXPECT_LE(diff(model.classify(batch, type_ids, options), expected_logits), tolerance(expected_logits)) << layout;
  }
}

}  // namespace
}  // namespace jagged
