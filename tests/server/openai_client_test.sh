#!/usr/bin/env bash
# Runs tests/server/openai_client_test.mjs (the official `openai` npm client) against `jagged serve` on stories260K,
# started here on a free loopback port and stopped with SIGTERM (which must exit 0). The client package is fetched
# from npm into build/test-data/npm/openai on first use (never committed). Exit 77 (skipped) when stories260K or
# npm is unreachable, unless JAGGED_REQUIRE_SHARED=1.
set -euo pipefail
build=$1
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
model="$source_dir/../shared/models/stories260K"
skip() {
  echo "skipped: $1" >&2
  [ "${JAGGED_REQUIRE_SHARED:-0}" = 1 ] && exit 1
  exit 77
}
[ -f "$model/stories260K.bin" ] || skip "test data missing (set up ../shared to run this): $model"
package="$build/test-data/npm/openai"
if [ ! -f "$package/package.json" ]; then
  mkdir -p "$build/test-data/tarballs" "$package"
  (cd "$build/test-data/tarballs" && npm pack --silent openai@5.23.2 >/dev/null) || skip "npm cannot fetch openai@5.23.2"
  tar -xzf "$build/test-data/tarballs/openai-5.23.2.tgz" -C "$package" --strip-components=1
  rm -f "$build/test-data/tarballs/openai-5.23.2.tgz"
fi

log=$(mktemp)
template=$(mktemp)
cat >"$template" <<'JINJA'
{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}
JINJA
"$build/jagged" serve --model "$model/stories260K.bin" --port 0 --threads 1 --shutdown-grace 1 \
  --chat-template "$template" >"$log" 2>&1 &
server=$!
cleanup() { kill -9 "$server" 2>/dev/null || true; rm -f "$log" "$template"; }
trap cleanup EXIT
port=""
for _ in $(seq 1 150); do  # at most 30 s for the port and the model
  grep -q "model loaded" "$log" && port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$log") && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.2
done
[ -n "$port" ] || { cat "$log" >&2; echo "jagged serve did not start" >&2; exit 1; }

timeout 60 node "$source_dir/tests/server/openai_client_test.mjs" "$package" "$port" "$model/expected_greedy_200.txt"

kill -TERM "$server"
for _ in $(seq 1 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.2; done
if kill -0 "$server" 2>/dev/null; then echo "jagged serve still running 20 s after SIGTERM" >&2; exit 1; fi
status=0
wait "$server" || status=$?
[ "$status" -eq 0 ] || { cat "$log" >&2; echo "jagged serve exited $status on SIGTERM" >&2; exit 1; }
echo "openai client test passed; jagged serve exited 0 on SIGTERM"
