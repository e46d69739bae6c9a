#!/usr/bin/env bash
# Writes build/test-data/chat-template-cases.json: llama.cpp's chat-template test cases rendered by
# @huggingface/jinja (fetched from npm into build/test-data/npm/huggingface-jinja, never committed). Needs the
# llama.cpp tree that scripts/fetch_test_data.sh extracts. Exit 77 when something is unreachable.
set -euo pipefail
build=$1
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
llama="$build/test-data/llama.cpp"
[ -f "$llama/tests/test-chat-template.cpp" ] || { echo "no $llama (run scripts/fetch_test_data.sh)" >&2; exit 77; }
package="$build/test-data/npm/huggingface-jinja"
if [ ! -f "$package/package.json" ]; then
  mkdir -p "$build/test-data/tarballs" "$package"
  (cd "$build/test-data/tarballs" && npm pack --silent @huggingface/jinja@0.5.13 >/dev/null) || exit 77
  tar -xzf "$build/test-data/tarballs/huggingface-jinja-0.5.13.tgz" -C "$package" --strip-components=1
  rm -f "$build/test-data/tarballs/huggingface-jinja-0.5.13.tgz"
fi
node "$source_dir/tests/server/chat_template_cases.mjs" "$llama" "$package" "$build/test-data/chat-template-cases.json"
