#!/usr/bin/env bash
# Starts `jagged serve` on a free loopback port, runs bench/serve_load.mjs against it (bounded: CLIENTS x REQUESTS
# streaming completions, each with a deadline), prints the JSON report and stops the server with SIGTERM. When
# LLAMA_SERVER (a llama-server binary, e.g. from scripts/setup_llamacpp.sh) and GGUF are set, llama-server runs the
# same clients on that GGUF in the same run (jagged serves the same GGUF then).
#   bash scripts/serve_load.sh [MODEL] [CLIENTS] [REQUESTS] [MAX_TOKENS]
# Defaults: ../shared/models/stories260K/stories260K.bin, 64 clients x 10 requests, 64 tokens, 2 threads.
# JAGGED_SERVE_ARGS: more options for jagged serve (e.g. "--kv-dtype bf16").
set -euo pipefail
cd "$(dirname "$0")/.."
model=${GGUF:-${1:-../shared/models/stories260K/stories260K.bin}}
clients=${2:-64}
requests=${3:-10}
max_tokens=${4:-64}
threads=${THREADS:-2}
ids=""; case "$model" in synthetic:*) ids="--prompt-ids" ;; esac  # no tokenizer: token-id prompts

wait_for() {  # wait_for URL PID: up to 120 s for GET URL/health to answer 200
  for _ in $(seq 1 600); do
    curl -sf "$1/health" >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}

log=$(mktemp)
# shellcheck disable=SC2086  # JAGGED_SERVE_ARGS is a list of options
./build/jagged serve --model "$model" --port 0 --threads "$threads" --max-concurrent "$clients" \
  ${JAGGED_SERVE_ARGS:-} >"$log" 2>&1 &
jagged=$!
trap 'kill -9 $jagged 2>/dev/null || true; [ -n "${llama:-}" ] && kill -9 $llama 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 600); do grep -q "listening on" "$log" && break; sleep 0.1; done
port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$log")
wait_for "http://127.0.0.1:$port" "$jagged" || { cat "$log" >&2; exit 1; }
node bench/serve_load.mjs --url "http://127.0.0.1:$port" --pid "$jagged" --clients "$clients" --requests "$requests" \
  --max-tokens "$max_tokens" $ids --label "jagged serve ($model, $threads threads${JAGGED_SERVE_ARGS:+, $JAGGED_SERVE_ARGS})"
kill -TERM "$jagged"
wait "$jagged" && echo "jagged serve exited 0 on SIGTERM" >&2

if [ -n "${LLAMA_SERVER:-}" ] && [ -n "${GGUF:-}" ]; then
  llama_port=$((port + 1))
  "$LLAMA_SERVER" -m "$GGUF" --host 127.0.0.1 --port "$llama_port" -t "$threads" -np "$clients" \
    -c $((clients * (max_tokens + 32))) >/dev/null 2>&1 &
  llama=$!
  wait_for "http://127.0.0.1:$llama_port" "$llama" || { echo "llama-server did not start" >&2; exit 1; }
  node bench/serve_load.mjs --url "http://127.0.0.1:$llama_port" --pid "$llama" --clients "$clients" \
    --requests "$requests" --max-tokens "$max_tokens" $ids --label "llama-server ($GGUF, $threads threads)"
  kill -TERM "$llama"
fi
