// config.json parsing for the shapes of real checkpoints (texts written inline, abridged to the keys that
// matter), and the Hugging Face -> canonical tensor names.
#include "io/hf_config.h"

#include <gtest/gtest.h>

#include "testing/files.h"

namespace jagged::io {
namespace {

using testing::expect_file_error;

constexpr const char* kLlama2_7B = R"({
  "architectures": ["LlamaForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
  "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 11008, "max_position_embeddings": 4096,
  "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 32,
  "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": null, "tie_word_embeddings": false,
  "torch_dtype": "float16", "transformers_version": "4.31.0.dev0", "use_cache": true, "vocab_size": 32000})";

constexpr const char* kLlama32_1B_Instruct = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "head_dim": 64, "hidden_act": "silu",
  "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 8192, "max_position_embeddings": 131072,
  "mlp_bias": false, "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 16,
  "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16", "use_cache": true,
  "vocab_size": 128256})";

constexpr const char* kLlama31_8B = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "bos_token_id": 128000,
  "eos_token_id": 128001, "hidden_act": "silu", "hidden_size": 4096, "intermediate_size": 14336,
  "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama", "num_attention_heads": 32,
  "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": false, "vocab_size": 128256})";

constexpr const char* kTinyLlama = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "bos_token_id": 1, "eos_token_id": 2,
  "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 5632,
  "max_position_embeddings": 2048, "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 22,
  "num_key_value_heads": 4, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": null,
  "rope_theta": 10000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "vocab_size": 32000})";

constexpr const char* kSmolLM_135M = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 0,
  "eos_token_id": 0, "hidden_act": "silu", "hidden_size": 576, "initializer_range": 0.02,
  "intermediate_size": 1536, "max_position_embeddings": 2048, "model_type": "llama", "num_attention_heads": 9,
  "num_hidden_layers": 30, "num_key_value_heads": 3, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
  "rope_scaling": null, "rope_theta": 10000.0, "tie_word_embeddings": true, "torch_dtype": "float32",
  "vocab_size": 49152})";

constexpr const char* kQwen2_05B = R"({
  "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
  "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
  "intermediate_size": 4864, "max_position_embeddings": 131072, "max_window_layers": 24, "model_type": "qwen2",
  "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
  "rope_theta": 1000000.0, "sliding_window": 131072, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
  "use_cache": true, "use_sliding_window": false, "vocab_size": 151936})";

constexpr const char* kMistral_7B = R"({
  "architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
  "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 32768,
  "model_type": "mistral", "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": 4096, "tie_word_embeddings": false,
  "torch_dtype": "bfloat16", "vocab_size": 32000})";

constexpr const char* kBertBaseUncased = R"({
  "architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": false,
  "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02,
  "intermediate_size": 3072, "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
  "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 0, "position_embedding_type": "absolute",
  "type_vocab_size": 2, "use_cache": true, "vocab_size": 30522})";

constexpr const char* kMiniLM_L6 = R"({
  "_name_or_path": "nreimers/MiniLM-L6-H384-uncased", "architectures": ["BertModel"],
  "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 384,
  "intermediate_size": 1536, "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
  "num_attention_heads": 12, "num_hidden_layers": 6, "pad_token_id": 0, "position_embedding_type": "absolute",
  "type_vocab_size": 2, "vocab_size": 30522})";

constexpr const char* kBertSentiment = R"({
  "architectures": ["BertForSequenceClassification"], "hidden_act": "gelu_new", "hidden_size": 128,
  "intermediate_size": 512, "num_attention_heads": 2, "num_hidden_layers": 2, "vocab_size": 1000,
  "id2label": {"1": "POSITIVE", "0": "NEGATIVE"}, "label2id": {"NEGATIVE": 0, "POSITIVE": 1}})";

TEST(HfConfig, Llama2) {
  EXPECT_EQ(hf_architecture(kLlama2_7B, "c"), "llama");
  const LlamaConfig config = parse_hf_llama_config(kLlama2_7B, "llama2/config.json");
  EXPECT_EQ(config.model_dim, 4096);
  EXPECT_EQ(config.ffn_dim, 11008);
  EXPECT_EQ(config.num_layers, 32);
  EXPECT_EQ(config.num_heads, 32);
  EXPECT_EQ(config.num_kv_heads, 32);
  EXPECT_EQ(config.head_dim, 128);
  EXPECT_EQ(config.vocab_size, 32000);
  EXPECT_EQ(config.context_length, 4096);
  EXPECT_EQ(config.rope_theta, 10000.0f);  // default
  EXPECT_EQ(config.rope_scaling.factor, 0.0f);
  EXPECT_EQ(config.rope_pairs, ops::RopePairs::halves);
  EXPECT_EQ(config.norm_eps, 1e-5f);
  EXPECT_FALSE(config.tied_output);
  EXPECT_FALSE(config.qkv_bias);
  EXPECT_EQ(config.bos_id, 1);
  EXPECT_EQ(config.eos_id, 2);
}

TEST(HfConfig, Llama3WithRopeScalingAndEosList) {
  const LlamaConfig config = parse_hf_llama_config(kLlama32_1B_Instruct, "c");
  EXPECT_EQ(config.model_dim, 2048);
  EXPECT_EQ(config.num_layers, 16);
  EXPECT_EQ(config.num_kv_heads, 8);
  EXPECT_EQ(config.head_dim, 64);
  EXPECT_EQ(config.vocab_size, 128256);
  EXPECT_EQ(config.context_length, 131072);
  EXPECT_EQ(config.rope_theta, 500000.0f);
  EXPECT_EQ(config.rope_scaling.factor, 32.0f);
  EXPECT_EQ(config.rope_scaling.low_freq_factor, 1.0f);
  EXPECT_EQ(config.rope_scaling.high_freq_factor, 4.0f);
  EXPECT_EQ(config.rope_scaling.original_context, 8192);
  EXPECT_TRUE(config.tied_output);
  EXPECT_EQ(config.bos_id, 128000);
  EXPECT_EQ(config.eos_id, 128001);  // first of the list

  const LlamaConfig big = parse_hf_llama_config(kLlama31_8B, "c");
  EXPECT_EQ(big.ffn_dim, 14336);
  EXPECT_EQ(big.head_dim, 128);
  EXPECT_EQ(big.rope_scaling.factor, 8.0f);
  EXPECT_FALSE(big.tied_output);
}

TEST(HfConfig, TinyLlamaSmolLMMistral) {
  const LlamaConfig tiny = parse_hf_llama_config(kTinyLlama, "c");
  EXPECT_EQ(tiny.num_layers, 22);
  EXPECT_EQ(tiny.num_heads, 32);
  EXPECT_EQ(tiny.num_kv_heads, 4);
  EXPECT_EQ(tiny.head_dim, 64);
  EXPECT_EQ(tiny.ffn_dim, 5632);

  const LlamaConfig smol = parse_hf_llama_config(kSmolLM_135M, "c");
  EXPECT_EQ(smol.model_dim, 576);
  EXPECT_EQ(smol.num_heads, 9);
  EXPECT_EQ(smol.num_kv_heads, 3);
  EXPECT_EQ(smol.head_dim, 64);
  EXPECT_EQ(smol.vocab_size, 49152);
  EXPECT_TRUE(smol.tied_output);
  EXPECT_EQ(smol.bos_id, 0);
  EXPECT_EQ(smol.eos_id, 0);

  EXPECT_EQ(hf_architecture(kMistral_7B, "c"), "llama");
  const LlamaConfig mistral = parse_hf_llama_config(kMistral_7B, "c");
  EXPECT_EQ(mistral.context_length, 32768);
  EXPECT_EQ(mistral.num_kv_heads, 8);
  EXPECT_FALSE(mistral.qkv_bias);
}

TEST(HfConfig, Qwen2HasQkvBiasAndHalvesRope) {
  EXPECT_EQ(hf_architecture(kQwen2_05B, "c"), "llama");
  const LlamaConfig config = parse_hf_llama_config(kQwen2_05B, "c");
  EXPECT_TRUE(config.qkv_bias);
  EXPECT_EQ(config.rope_pairs, ops::RopePairs::halves);
  EXPECT_EQ(config.model_dim, 896);
  EXPECT_EQ(config.num_heads, 14);
  EXPECT_EQ(config.num_kv_heads, 2);
  EXPECT_EQ(config.head_dim, 64);
  EXPECT_EQ(config.rope_theta, 1000000.0f);
  EXPECT_EQ(config.norm_eps, 1e-6f);
  EXPECT_EQ(config.vocab_size, 151936);
  EXPECT_EQ(config.bos_id, 151643);
  EXPECT_TRUE(config.tied_output);
}

TEST(HfConfig, BertConfigs) {
  EXPECT_EQ(hf_architecture(kBertBaseUncased, "c"), "bert");
  const BertConfig base = parse_hf_bert_config(kBertBaseUncased, "c");
  EXPECT_EQ(base.model_dim, 768);
  EXPECT_EQ(base.ffn_dim, 3072);
  EXPECT_EQ(base.num_layers, 12);
  EXPECT_EQ(base.num_heads, 12);
  EXPECT_EQ(base.vocab_size, 30522);
  EXPECT_EQ(base.context_length, 512);
  EXPECT_EQ(base.type_vocab_size, 2);
  EXPECT_EQ(base.norm_eps, 1e-12f);
  EXPECT_EQ(base.gelu, ops::GeluForm::erf);
  EXPECT_FALSE(base.pre_norm);

  const BertConfig mini = parse_hf_bert_config(kMiniLM_L6, "c");
  EXPECT_EQ(mini.model_dim, 384);
  EXPECT_EQ(mini.num_layers, 6);

  const BertConfig sentiment = parse_hf_bert_config(kBertSentiment, "c");
  EXPECT_EQ(sentiment.gelu, ops::GeluForm::tanh);
  EXPECT_EQ(sentiment.num_labels, 2);
  EXPECT_EQ(sentiment.labels, (std::vector<std::string>{"NEGATIVE", "POSITIVE"}));
  EXPECT_EQ(sentiment.context_length, 512);  // defaults
  EXPECT_EQ(sentiment.norm_eps, 1e-12f);
}

TEST(HfConfig, RejectsUnknownArchitecturesNamingThem) {
  expect_file_error([] { hf_architecture(R"({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"})", "m/config.json"); },
                    {"m/config.json", "gpt2"});
  expect_file_error([] { hf_architecture(R"({"architectures": ["XLMRobertaModel"]})", "c"); }, {"XLMRobertaModel"});
  expect_file_error([] { hf_architecture(R"({"architectures": ["GemmaForCausalLM"], "model_type": "llama"})", "c"); },
                    {"GemmaForCausalLM"});
  expect_file_error([] { hf_architecture(R"({"hidden_size": 3})", "c"); }, {"neither"});
  expect_file_error([] { hf_architecture(R"({"architectures": ["BertModel"], "model_type": "llama"})", "c"); },
                    {"contradicts"});
  expect_file_error([] { hf_architecture("{not json", "c"); }, {"not valid JSON"});
  expect_file_error([] { hf_architecture("[1]", "c"); }, {"not a JSON object"});
  expect_file_error([] { parse_hf_llama_config(kBertBaseUncased, "c"); }, {"not a Llama-family model"});
  expect_file_error([] { parse_hf_bert_config(kTinyLlama, "c"); }, {"not a BERT model"});
}

// kTinyLlama with one key replaced (or added).
std::string tiny_llama_with(const std::string& key, const std::string& value) {
  std::string text = kTinyLlama;
  const std::string quoted = concat("\"", key, "\":");
  const size_t at = text.find(quoted);
  if (at == std::string::npos) return concat(text.substr(0, text.size() - 1), ", ", quoted, " ", value, "}");
  const size_t value_begin = at + quoted.size();
  size_t value_end = value_begin;
  int depth = 0;
  for (; value_end < text.size(); ++value_end) {
    const char c = text[value_end];
    if (c == '{' || c == '[') ++depth;
    if (c == '}' || c == ']') {
      if (depth == 0) break;
      --depth;
    }
    if (c == ',' && depth == 0) break;
  }
  return concat(text.substr(0, value_begin), " ", value, text.substr(value_end));
}

TEST(HfConfig, RejectsBadValues) {
  expect_file_error([] { parse_hf_llama_config(tiny_llama_with("rope_scaling", R"({"type": "linear", "factor": 2.0})"), "c"); },
                    {"rope_scaling type \"linear\" is not supported"});
  expect_file_error([] { parse_hf_llama_config(tiny_llama_with("hidden_act", "\"gelu\""), "c"); },
                    {"hidden_act \"gelu\""});
  expect_file_error([] { parse_hf_llama_config(tiny_llama_with("num_key_value_heads", "5"), "c"); },
                    {"num_kv_heads 5 does not divide num_heads 32"});
  expect_file_error([] { parse_hf_llama_config(tiny_llama_with("num_key_value_heads", "64"), "c"); },
                    {"num_key_value_heads", "64", "outside"});
  expect_file_error([] { parse_hf_llama_config(tiny_llama_with("hidden_size", "\"big\""), "c"); },
                    {"\"hidden_size\" is \"big\", expected an integer"});
  expect_file_error([] { parse_hf_llama_config(tiny_llama_with("hidden_size", "2050"), "c"); },
                    {"num_attention_heads 32 does not divide hidden_size 2050"});
  expect_file_error([] { parse_hf_llama_config(tiny_llama_with("num_hidden_layers", "18446744073709551615"), "c"); },
                    {"num_hidden_layers", "outside"});
  expect_file_error([] { parse_hf_llama_config(tiny_llama_with("vocab_size", "-3"), "c"); }, {"vocab_size", "outside"});
  expect_file_error([] { parse_hf_llama_config(tiny_llama_with("rms_norm_eps", "0"), "c"); }, {"norm_eps 0"});
  expect_file_error([] { parse_hf_llama_config(tiny_llama_with("eos_token_id", "40000"), "c"); },
                    {"eos_id 40000 is outside"});
  expect_file_error([] { parse_hf_llama_config(tiny_llama_with("attention_bias", "true"), "c"); }, {"attention_bias"});
  expect_file_error([] { parse_hf_llama_config(tiny_llama_with("tie_word_embeddings", "1"), "c"); },
                    {"tie_word_embeddings", "true or false"});
  expect_file_error([] { parse_hf_llama_config(R"({"model_type": "llama", "hidden_size": 64})", "c"); },
                    {"lacks \"intermediate_size\""});
  // Defaults: head_dim null -> hidden / heads; explicit head_dim wins.
  EXPECT_EQ(parse_hf_llama_config(tiny_llama_with("head_dim", "null"), "c").head_dim, 64);
  EXPECT_EQ(parse_hf_llama_config(tiny_llama_with("head_dim", "128"), "c").head_dim, 128);
  EXPECT_EQ(parse_hf_llama_config(tiny_llama_with("rope_scaling", R"({"rope_type": "default"})"), "c").rope_scaling.factor,
            0.0f);

  expect_file_error([] { parse_hf_bert_config(R"({"model_type": "bert", "hidden_size": 8, "intermediate_size": 8,
      "num_hidden_layers": 1, "num_attention_heads": 3, "vocab_size": 10})", "c"); },
                    {"num_heads 3 does not divide model_dim 8"});
  expect_file_error([] { parse_hf_bert_config(R"({"model_type": "bert", "hidden_size": 8, "intermediate_size": 8,
      "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 10, "hidden_act": "relu"})", "c"); },
                    {"hidden_act \"relu\""});
  expect_file_error([] { parse_hf_bert_config(R"({"model_type": "bert", "hidden_size": 8, "intermediate_size": 8,
      "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 10, "position_embedding_type": "relative_key"})", "c"); },
                    {"relative_key"});
  expect_file_error([] { parse_hf_bert_config(R"({"model_type": "bert", "hidden_size": 8, "intermediate_size": 8,
      "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 10, "id2label": {"0": "a", "2": "b"}})", "c"); },
                    {"id2label key \"2\""});
}

TEST(HfNames, LlamaNames) {
  EXPECT_EQ(hf_llama_tensor_name("model.embed_tokens.weight"), "token_embd.weight");
  EXPECT_EQ(hf_llama_tensor_name("model.norm.weight"), "output_norm.weight");
  EXPECT_EQ(hf_llama_tensor_name("lm_head.weight"), "output.weight");
  EXPECT_EQ(hf_llama_tensor_name("model.layers.0.self_attn.q_proj.weight"), "blk.0.attn_q.weight");
  EXPECT_EQ(hf_llama_tensor_name("model.layers.11.self_attn.k_proj.bias"), "blk.11.attn_k.bias");
  EXPECT_EQ(hf_llama_tensor_name("model.layers.3.self_attn.o_proj.weight"), "blk.3.attn_output.weight");
  EXPECT_EQ(hf_llama_tensor_name("model.layers.3.mlp.gate_proj.weight"), "blk.3.ffn_gate.weight");
  EXPECT_EQ(hf_llama_tensor_name("model.layers.3.mlp.up_proj.weight"), "blk.3.ffn_up.weight");
  EXPECT_EQ(hf_llama_tensor_name("model.layers.3.mlp.down_proj.weight"), "blk.3.ffn_down.weight");
  EXPECT_EQ(hf_llama_tensor_name("model.layers.7.input_layernorm.weight"), "blk.7.attn_norm.weight");
  EXPECT_EQ(hf_llama_tensor_name("model.layers.7.post_attention_layernorm.weight"), "blk.7.ffn_norm.weight");
  EXPECT_EQ(hf_llama_tensor_name("model.layers.0.self_attn.rotary_emb.inv_freq"), "");
  EXPECT_EQ(hf_llama_tensor_name("model.layers.0.self_attn.o_proj.bias"), std::nullopt);
  EXPECT_EQ(hf_llama_tensor_name("model.layers.x.mlp.up_proj.weight"), std::nullopt);
  EXPECT_EQ(hf_llama_tensor_name("model.layers.99999999.mlp.up_proj.weight"), std::nullopt);
  EXPECT_EQ(hf_llama_tensor_name("transformer.wte.weight"), std::nullopt);
}

TEST(HfNames, BertNames) {
  for (const std::string prefix : {"", "bert."}) {
    EXPECT_EQ(hf_bert_tensor_name(prefix + "embeddings.word_embeddings.weight"), "token_embd.weight");
    EXPECT_EQ(hf_bert_tensor_name(prefix + "embeddings.position_embeddings.weight"), "position_embd.weight");
    EXPECT_EQ(hf_bert_tensor_name(prefix + "embeddings.token_type_embeddings.weight"), "token_types.weight");
    EXPECT_EQ(hf_bert_tensor_name(prefix + "embeddings.LayerNorm.weight"), "token_embd_norm.weight");
    EXPECT_EQ(hf_bert_tensor_name(prefix + "embeddings.LayerNorm.gamma"), "token_embd_norm.weight");
    EXPECT_EQ(hf_bert_tensor_name(prefix + "embeddings.LayerNorm.beta"), "token_embd_norm.bias");
    EXPECT_EQ(hf_bert_tensor_name(prefix + "encoder.layer.2.attention.self.query.weight"), "blk.2.attn_q.weight");
    EXPECT_EQ(hf_bert_tensor_name(prefix + "encoder.layer.2.attention.self.key.bias"), "blk.2.attn_k.bias");
    EXPECT_EQ(hf_bert_tensor_name(prefix + "encoder.layer.2.attention.self.value.weight"), "blk.2.attn_v.weight");
    EXPECT_EQ(hf_bert_tensor_name(prefix + "encoder.layer.2.attention.output.dense.weight"), "blk.2.attn_output.weight");
    EXPECT_EQ(hf_bert_tensor_name(prefix + "encoder.layer.2.attention.output.LayerNorm.bias"),
              "blk.2.attn_output_norm.bias");
    EXPECT_EQ(hf_bert_tensor_name(prefix + "encoder.layer.2.intermediate.dense.weight"), "blk.2.ffn_up.weight");
    EXPECT_EQ(hf_bert_tensor_name(prefix + "encoder.layer.2.output.dense.bias"), "blk.2.ffn_down.bias");
    EXPECT_EQ(hf_bert_tensor_name(prefix + "encoder.layer.2.output.LayerNorm.weight"), "blk.2.layer_output_norm.weight");
    EXPECT_EQ(hf_bert_tensor_name(prefix + "pooler.dense.weight"), "cls.pooler.weight");
    EXPECT_EQ(hf_bert_tensor_name(prefix + "embeddings.position_ids"), "");
    EXPECT_EQ(hf_bert_tensor_name(prefix + "encoder.layer.2.attention.self.distance_embedding.weight"), std::nullopt);
  }
  EXPECT_EQ(hf_bert_tensor_name("classifier.weight"), "cls.weight");
  EXPECT_EQ(hf_bert_tensor_name("classifier.bias"), "cls.bias");
  EXPECT_EQ(hf_bert_tensor_name("cls.predictions.transform.dense.weight"), "");
  EXPECT_EQ(hf_bert_tensor_name("cls.seq_relationship.weight"), "");
  EXPECT_EQ(hf_bert_tensor_name("roberta.embeddings.word_embeddings.weight"), std::nullopt);
}

}  // namespace
}  // namespace jagged::io
