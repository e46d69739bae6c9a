// export_huggingface(BertModel): the directory it writes loads back (load_bert_model) to a model with the same
// config and bit-identical outputs, for classifiers, bare encoders with and without the pooler, and both GELU forms.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "jagged/model_files.h"
#include "jagged/workload.h"

namespace jagged {
namespace {

namespace fs = std::filesystem;

class BertExport : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = fs::temp_directory_path() /
                 concat("jagged_bert_export_", ::testing::UnitTest::GetInstance()->current_test_info()->name(), "_",
                        getpid());
  }
  void TearDown() override { fs::remove_all(directory_); }

  nlohmann::json config_json() const {
    std::ifstream in(directory_ / "config.json");
    return nlohmann::json::parse(in);
  }

  fs::path directory_;
};

bool bit_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

// Ragged, with an empty sequence and a single token; ids over the whole vocabulary, types 0 and 1.
NestedTensor test_batch(const BertModel& model) {
  return random_token_batch({9, 0, 1, 33, 4}, model.config().vocab_size, 11);
}

void expect_same_outputs(const BertModel& original, const BertModel& loaded) {
  const NestedTensor batch = test_batch(original);
  std::vector<int32_t> types(static_cast<size_t>(batch.num_tokens()));
  for (size_t t = 0; t < types.size(); ++t) types[t] = static_cast<int32_t>(t % 2);
  const Tensor token_types = Tensor::from_ints(types, {batch.num_tokens()});
  EXPECT_TRUE(bit_equal(original.forward(batch, token_types), loaded.forward(batch, token_types)));
  EXPECT_TRUE(bit_equal(original.embed(batch, Pooling::mean, true), loaded.embed(batch, Pooling::mean, true)));
  EXPECT_EQ(original.parameter_count(), loaded.parameter_count());
  EXPECT_EQ(original.has_classifier(), loaded.has_classifier());
  if (original.has_classifier()) {
    const NestedTensor non_empty = random_token_batch({9, 1, 33}, original.config().vocab_size, 12);
    EXPECT_TRUE(bit_equal(original.classify(non_empty), loaded.classify(non_empty)));
  }
}

void expect_same_config(const BertConfig& a, const BertConfig& b) {
  EXPECT_EQ(a.model_dim, b.model_dim);
  EXPECT_EQ(a.ffn_dim, b.ffn_dim);
  EXPECT_EQ(a.num_layers, b.num_layers);
  EXPECT_EQ(a.num_heads, b.num_heads);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.context_length, b.context_length);
  EXPECT_EQ(a.type_vocab_size, b.type_vocab_size);
  EXPECT_EQ(a.norm_eps, b.norm_eps);
  EXPECT_EQ(a.gelu, b.gelu);
  EXPECT_EQ(a.pre_norm, b.pre_norm);
  EXPECT_EQ(a.num_labels, b.num_labels);
}

// The synthetic model's weights under a changed config, and without the tensors named by `drop_prefixes`.
BertModel variant(const BertConfig& config, std::initializer_list<const char*> drop_prefixes) {
  const BertModel base = BertModel::synthetic("bert-tiny", 77);
  WeightMap weights = base.canonical_weights();
  for (auto it = weights.begin(); it != weights.end();) {
    bool drop = false;
    for (const char* prefix : drop_prefixes) drop = drop || it->first.rfind(prefix, 0) == 0;
    it = drop ? weights.erase(it) : std::next(it);
  }
  return BertModel(config, std::move(weights));
}

TEST_F(BertExport, ClassifierRoundTripsWithItsLabels) {
  const BertModel base = BertModel::synthetic("bert-tiny", 5);
  BertConfig config = base.config();
  config.labels = {"negative", "positive"};
  config.norm_eps = 1e-5f;  // not the default: the loader must read it back
  const BertModel model(config, base.canonical_weights());
  export_huggingface(model, directory_);
  const nlohmann::json written = config_json();
  EXPECT_EQ(written["architectures"][0], "BertForSequenceClassification");
  EXPECT_EQ(written["layer_norm_eps"].get<double>(), 1e-5);  // written as people write it, not 9.99999974738e-06
  EXPECT_EQ(written["id2label"]["1"], "positive");
  const BertModel loaded = load_bert_model(directory_);
  expect_same_config(model.config(), loaded.config());
  EXPECT_EQ(loaded.config().labels, config.labels);
  expect_same_outputs(model, loaded);
}

TEST_F(BertExport, UnnamedLabelsGetHuggingFaceDefaultNames) {
  const BertModel model = BertModel::synthetic("bert-tiny", 6);
  export_huggingface(model, directory_);
  EXPECT_EQ(config_json()["id2label"]["0"], "LABEL_0");
  expect_same_outputs(model, load_bert_model(directory_));
}

TEST_F(BertExport, BareEncoderWithAndWithoutPooler) {
  BertConfig config = BertModel::synthetic("bert-tiny").config();
  config.num_labels = 0;
  config.gelu = ops::GeluForm::tanh;
  const BertModel with_pooler = variant(config, {"cls.weight", "cls.bias"});
  export_huggingface(with_pooler, directory_);
  EXPECT_EQ(config_json()["architectures"][0], "BertModel");
  EXPECT_EQ(config_json()["hidden_act"], "gelu_new");
  EXPECT_FALSE(config_json().contains("id2label"));
  const BertModel loaded = load_bert_model(directory_);
  expect_same_config(with_pooler.config(), loaded.config());
  expect_same_outputs(with_pooler, loaded);

  fs::remove_all(directory_);
  const BertModel without_pooler = variant(config, {"cls."});
  export_huggingface(without_pooler, directory_);
  const BertModel reloaded = load_bert_model(directory_);
  EXPECT_LT(reloaded.parameter_count(), loaded.parameter_count());
  expect_same_outputs(without_pooler, reloaded);
}

TEST_F(BertExport, RejectsPreNormEncoders) {
  BertConfig config = BertModel::synthetic("bert-tiny").config();
  config.pre_norm = true;
  const BertModel base = BertModel::synthetic("bert-tiny");
  WeightMap weights = base.canonical_weights();
  weights["output_norm.weight"] = weights.at("token_embd_norm.weight").clone();
  weights["output_norm.bias"] = weights.at("token_embd_norm.bias").clone();
  const BertModel pre_norm(config, std::move(weights));
  try {
    export_huggingface(pre_norm, directory_);
    FAIL() << "a pre-norm encoder was exported";
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("pre-norm"), std::string::npos) << error.what();
  }
  EXPECT_FALSE(fs::exists(directory_ / "model.safetensors"));
}

TEST_F(BertExport, UnwritableDirectoryIsAFileError) {
  const BertModel model = BertModel::synthetic("bert-tiny");
  fs::create_directories(directory_);
  std::ofstream(directory_ / "blocker") << "a file where the export wants a folder";
  try {
    export_huggingface(model, directory_ / "blocker");
    FAIL() << "exported into a file";
  } catch (const FileError& error) {
    EXPECT_NE(std::string(error.what()).find("blocker"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace jagged
